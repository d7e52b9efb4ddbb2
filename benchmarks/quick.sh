#!/usr/bin/env bash
# Quick single-instance figures on loopback: start->healthy, idle RSS, /health and authenticated
# tools/call throughput with wrk (Debian's `wrk`), peak RSS. Usage: benchmarks/quick.sh [PORT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-18080}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
(cd "$root" && cargo build --release --locked -p postgres-mcp >/dev/null 2>&1)
bin="$root/target/release/postgres-mcp"
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" kb build --from "$root/demo/docs" --out "$dir/kb.db" >/dev/null
TOKEN=$("$bin" token create --file "$dir/tokens.yaml" --name bench 2>/dev/null)
export TOKEN
printf 'log:\n  level: warn\nauth:\n  rate_limit:\n    failures: 1000000\n' > "$dir/config.yaml"
start=$(date +%s%N)
"$bin" serve --config "$dir/config.yaml" --listen "127.0.0.1:$port" --tokens "$dir/tokens.yaml" --kb "$dir/kb.db" &
pid=$!
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.001; done
echo "start->healthy: $(( ($(date +%s%N) - start) / 1000000 )) ms"
sleep 1
echo "idle RSS: $(awk '/VmRSS/{print $2, $3}' /proc/$pid/status)"
for connections in 16 64; do
  echo "tools/call search_knowledgebase, $connections connections:"
  wrk -t2 -c"$connections" -d8s -s "$root/benchmarks/wrk/tools_call.lua" "http://127.0.0.1:$port/mcp" | grep -E "Latency|Requests/sec|Non-2xx|non-2xx"
done
echo "ping (auth + JSON-RPC, no tool), 64 connections:"
wrk -t2 -c64 -d5s -s "$root/benchmarks/wrk/ping.lua" "http://127.0.0.1:$port/mcp" | grep -E "Requests/sec|Non-2xx"
echo "/health, 64 connections:"
wrk -t2 -c64 -d5s "http://127.0.0.1:$port/health" | grep -E "Requests/sec"
echo "peak RSS: $(awk '/VmHWM/{print $2, $3}' /proc/$pid/status)"
