#!/usr/bin/env bash
# Creates a self-signed certificate for local use: gen-self-signed-cert.sh DIR [HOSTNAME]
# Writes DIR/tls.crt and DIR/tls.key (the names nginx/nginx.conf expects), valid 825 days for
# HOSTNAME (default localhost), 127.0.0.1 and ::1. Never overwrites an existing pair.
# For production, use a certificate from your CA or ACME client instead.
set -euo pipefail
dir=${1:?usage: gen-self-signed-cert.sh DIR [HOSTNAME]}
host=${2:-localhost}
mkdir -p "$dir"
if [ -s "$dir/tls.crt" ] && [ -s "$dir/tls.key" ]; then
  echo "kept existing certificate in $dir"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
  -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host,IP:127.0.0.1,IP:::1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
# The certificate is public; the key is a secret: owner and group only (0640). The load balancer's
# container reads it through that group (compose.yaml's group_add: MCP_SECRETS_GID; scripts/up.sh
# sets the file's group), never through a world-readable bit.
chmod 644 "$tmp/tls.crt"
chmod 640 "$tmp/tls.key"
mv "$tmp/tls.key" "$dir/tls.key"
mv "$tmp/tls.crt" "$dir/tls.crt"
echo "wrote $dir/tls.crt and $dir/tls.key for $host"
