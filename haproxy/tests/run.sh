#!/usr/bin/env bash
# Validates haproxy/haproxy.cfg with the real HAProxy, exactly as shipped: `haproxy -c` in
# zero-warning mode, a broken copy rejected, then a run of it checking what a syntax check cannot
# (the HTTP->HTTPS redirect keeps the port, internal paths 404, the self check fails with no
# instance up).
#
# The config names its servers mcp-1..3 and reads its files under /usr/local/etc/haproxy. So the
# checks run in a private mount and network namespace whose /etc/hosts maps those names, with a
# throwaway certificate and the shipped trusted-proxies.lst bind-mounted where the config reads them:
# the config file itself is not copied or edited, and the running HAProxy listens on the namespace's
# own loopback (no port on the host).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
conf="$here/../haproxy.cfg"
command -v haproxy >/dev/null || { echo "haproxy is not installed (apt-get install haproxy)"; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/../../nginx/gen-self-signed-cert.sh" "$tmp/tls" >/dev/null
printf '127.0.0.1 localhost\n127.0.0.1 mcp-1\n127.0.0.1 mcp-2\n127.0.0.1 mcp-3\n' > "$tmp/hosts"
mkdir -p /usr/local/etc/haproxy/tls
touch /usr/local/etc/haproxy/trusted-proxies.lst

in_namespace() {
  unshare --mount --net --propagation private bash -euc '
    ip link set lo up 2>/dev/null || true
    mount --bind "$1/hosts" /etc/hosts
    mount --bind "$1/tls" /usr/local/etc/haproxy/tls
    mount --bind "$2" /usr/local/etc/haproxy/trusted-proxies.lst
    shift 2
    "$@"
  ' _ "$tmp" "$here/../trusted-proxies.lst" "$@"
}

# -dW: any warning is an error (a rule HAProxy would reorder, a name it cannot resolve).
in_namespace haproxy -dW -c -q -f "$conf"

sed 's/timeout server 35s/timeout server thirty-five/' "$conf" > "$tmp/broken.cfg"
if in_namespace haproxy -c -q -f "$tmp/broken.cfg" 2>/dev/null; then
  echo "haproxy -c accepted a broken config: the check is not working"
  exit 1
fi

cat > "$tmp/behaviour.sh" <<'SH'
set -euo pipefail
haproxy -D -p "$2/haproxy.pid" -f "$1" >/dev/null 2>&1
trap 'kill "$(cat "$2/haproxy.pid")"' EXIT
source "$3"
# Nothing listens on mcp-1..3:8080 here: every server is down, the public routes answer 503 and
# the container's self check fails.
sleep 2.5
expect "$(https /health)" 503 "no instance up"
expect "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8081/healthz)" 503 "self check with no instance"
SH
in_namespace bash "$tmp/behaviour.sh" "$conf" "$tmp" "$here/../../nginx/tests/front_contract.sh"
echo "haproxy -c: haproxy/haproxy.cfg is valid without warnings; a broken copy is rejected; redirects keep the port; internal paths 404; no instance -> 503"
