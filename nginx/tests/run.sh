#!/usr/bin/env bash
# Validates nginx/nginx.conf with the real nginx, exactly as shipped: `nginx -t`, then a run of it
# checking what a syntax check cannot (the HTTP->HTTPS redirect keeps the port, internal paths 404).
#
# The config names its upstreams mcp-1..3, which only resolve inside the Compose network. So the
# checks run in a private mount and network namespace whose /etc/hosts maps those names, with a
# throwaway certificate bind-mounted at /etc/nginx/tls and the shipped trusted-proxies.conf at
# /etc/nginx/trusted-proxies.conf: the config file itself is not copied or edited, and the running
# nginx listens on the namespace's own loopback (no port on the host).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
conf="$here/../nginx.conf"
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)"; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/../gen-self-signed-cert.sh" "$tmp/tls" >/dev/null
printf '127.0.0.1 localhost\n127.0.0.1 mcp-1\n127.0.0.1 mcp-2\n127.0.0.1 mcp-3\n' > "$tmp/hosts"
mkdir -p /etc/nginx/tls
touch /etc/nginx/trusted-proxies.conf

# In the namespace: mount the files, then run "$@".
in_namespace() {
  unshare --mount --net --propagation private bash -euc '
    ip link set lo up 2>/dev/null || true
    mount --bind "$1/hosts" /etc/hosts
    mount --bind "$1/tls" /etc/nginx/tls
    mount --bind "$2" /etc/nginx/trusted-proxies.conf
    shift 2
    "$@"
  ' _ "$tmp" "$here/../trusted-proxies.conf" "$@"
}

in_namespace nginx -t -c "$conf"

# A config that fails must fail the check (the check is not a no-op).
sed 's/proxy_next_upstream_tries 3;/proxy_next_upstream_tries three;/' "$conf" > "$tmp/broken.conf"
if in_namespace nginx -t -q -c "$tmp/broken.conf" 2>/dev/null; then
  echo "nginx -t accepted a broken config: the check is not working"
  exit 1
fi

# The running config: redirects keep the port pair, internal paths are not proxied.
cat > "$tmp/behaviour.sh" <<'SH'
set -euo pipefail
nginx -c "$1" -g 'daemon on;' >/dev/null 2>&1
trap 'kill "$(cat /tmp/nginx.pid)"' EXIT
source "$2"
SH
in_namespace bash "$tmp/behaviour.sh" "$conf" "$here/front_contract.sh"
echo "nginx -t: nginx/nginx.conf is valid; a broken copy is rejected; redirects keep the port; internal paths 404"
