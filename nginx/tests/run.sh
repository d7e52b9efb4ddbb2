#!/usr/bin/env bash
# Validates nginx/nginx.conf with the real nginx (`nginx -t`), exactly as shipped.
#
# The config names its upstreams mcp-1..3, which only resolve inside the Compose network. So the check
# runs in a private mount namespace whose /etc/hosts maps those names, with a throwaway certificate
# bind-mounted at /etc/nginx/tls: the config file itself is not copied or edited.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
conf="$here/../nginx.conf"
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/../gen-self-signed-cert.sh" "$tmp/tls" >/dev/null
printf '127.0.0.1 localhost\n127.0.0.1 mcp-1\n127.0.0.1 mcp-2\n127.0.0.1 mcp-3\n' > "$tmp/hosts"
mkdir -p /etc/nginx/tls
unshare --mount --propagation private bash -euc '
  mount --bind "$1/hosts" /etc/hosts
  mount --bind "$1/tls" /etc/nginx/tls
  nginx -t -c "$2"
' _ "$tmp" "$conf"

# A config that fails must fail the check (the check is not a no-op).
sed 's/proxy_next_upstream_tries 3;/proxy_next_upstream_tries three;/' "$conf" > "$tmp/broken.conf"
if unshare --mount --propagation private bash -euc '
  mount --bind "$1/hosts" /etc/hosts
  mount --bind "$1/tls" /etc/nginx/tls
  nginx -t -q -c "$2"
' _ "$tmp" "$tmp/broken.conf" 2>/dev/null; then
  echo "nginx -t accepted a broken config: the check is not working"
  exit 1
fi
echo "nginx -t: nginx/nginx.conf is valid; a broken copy is rejected"
