#!/usr/bin/env bash
# The local stack: three postgres-mcp instances behind nginx (TLS) with the demo knowledge base,
# started with Docker Compose from images built on this machine (no registry needed).
# Prints a working token and an MCP call to try. `make down` stops it.
#
# Files live in ./local: config/ (tokens.yaml, users.yaml, session.key, kb.db - mounted read-only by
# every instance; edit them while the stack runs to see live reload) and tls/ (self-signed pair).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/setup.sh
scripts/build-images.sh
bin=target/release/postgres-mcp

config=local/config
mkdir -p "$config"
"$bin" kb build --from demo/docs --out "$config/kb.db"
[ -f "$config/session.key" ] || "$bin" session-key create "$config/session.key"
if [ ! -f "$config/users.yaml" ]; then
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  echo "$password" | "$bin" user add --file "$config/users.yaml" --username demo --password-stdin
  (umask 077 && echo "$password" > local/demo-password.txt)
fi
"$bin" token revoke --file "$config/tokens.yaml" --name demo >/dev/null 2>&1 || true
token=$("$bin" token create --file "$config/tokens.yaml" --name demo --expires-in 30d 2>/dev/null)
(umask 077 && echo "$token" > local/demo-token.txt)
nginx/gen-self-signed-cert.sh local/tls >/dev/null
# The containers (instances uid 10001, nginx uid 101) read these through bind mounts. tokens.yaml,
# users.yaml and kb.db hold no secret (hashes only): world-readable. session.key and tls.key are
# secrets: mode 0640, group MCP_SECRETS_GID (default: your own group), which compose.yaml gives
# every container as a supplementary group; no other user of this host can read them. On a shared
# host, use a dedicated group: MCP_SECRETS_GID=$(getent group mcp-secrets | cut -d: -f3) make up.
export MCP_SECRETS_GID=${MCP_SECRETS_GID:-$(id -g)}
chmod 755 "$config" local/tls
chmod 644 "$config"/tokens.yaml "$config"/users.yaml "$config"/kb.db local/tls/tls.crt
chgrp "$MCP_SECRETS_GID" "$config"/session.key local/tls/tls.key
chmod 640 "$config"/session.key local/tls/tls.key

export MCP_CONFIG_DIR="$root/$config" MCP_TLS_DIR="$root/local/tls"
port=${MCP_HTTPS_PORT:-8443}
# MCP_BALANCER=haproxy: HAProxy in front instead of nginx (compose/compose.haproxy.yaml).
files=(-f compose/compose.yaml)
[ "${MCP_BALANCER:-nginx}" = haproxy ] && files+=(-f compose/compose.haproxy.yaml)
scripts/compose.sh "${files[@]}" up -d --wait --remove-orphans

cat <<MSG

postgres-mcp is up: three instances (mcp-1, mcp-2, mcp-3) behind ${MCP_BALANCER:-nginx}.
  MCP endpoint:  https://localhost:$port/mcp        (self-signed: local/tls/tls.crt)
  demo token:    $token   (also in local/demo-token.txt)
  demo user:     demo / $(cat local/demo-password.txt 2>/dev/null || echo '(see local/demo-password.txt)')

  curl --cacert local/tls/tls.crt https://localhost:$port/mcp \\
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \\
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' \\
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_knowledgebase","arguments":{"query":"replication lag"}}}'

  Repeat it: the X-Instance-Id response header (curl -i) changes between instances.
  An MCP client (Claude Desktop, the Python SDK, ...): URL https://localhost:$port/mcp,
  header "Authorization: Bearer $token".
  Live reload: target/release/postgres-mcp token create --file local/config/tokens.yaml --name me
  Stop: make down
MSG
