#!/usr/bin/env bash
# One instance on 127.0.0.1:8080 with the demo knowledge base and a fresh demo token, no Docker needed.
# The files live in ./local/demo; edit them while it runs to see live reload.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p postgres-mcp
bin=target/release/postgres-mcp
dir=local/demo
mkdir -p "$dir"
"$bin" kb build --from demo/docs --out "$dir/kb.db"
[ -f "$dir/session.key" ] || "$bin" session-key create "$dir/session.key"
if [ ! -f "$dir/users.yaml" ]; then
  echo "demo-password" | "$bin" user add --file "$dir/users.yaml" --username demo --password-stdin
fi
"$bin" token revoke --file "$dir/tokens.yaml" --name demo 2>/dev/null || true
token=$("$bin" token create --file "$dir/tokens.yaml" --name demo --expires-in 30d 2>/dev/null)

cat <<MSG

postgres-mcp demo on http://127.0.0.1:8080  (Ctrl-C to stop)
  demo token:  $token
  try:  curl -s http://127.0.0.1:8080/mcp -H "Authorization: Bearer $token" \\
          -H 'Content-Type: application/json' -H 'MCP-Protocol-Version: 2025-11-25' \\
          -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_knowledgebase","arguments":{"query":"replication lag"}}}'
  login: curl -s http://127.0.0.1:8080/api/login -H 'Content-Type: application/json' -d '{"username":"demo","password":"demo-password"}'

MSG
exec "$bin" serve --listen 127.0.0.1:8080 --instance-id demo \
  --tokens "$dir/tokens.yaml" --users "$dir/users.yaml" --kb "$dir/kb.db" \
  --config <(printf 'auth:\n  session_secret_file: %s\n' "$PWD/$dir/session.key")
