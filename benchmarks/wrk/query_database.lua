-- wrk script: authenticated MCP tools/call query_database, a primary-key lookup (see benchmarks/src/pg.rs).
-- wrk -t2 -c16 -d10s -s benchmarks/wrk/query_database.lua http://127.0.0.1:8080/mcp  (token in $TOKEN)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query_database","arguments":{"sql":"SELECT id, name, balance FROM customers WHERE id = 4242"}}}'

-- `done`: non-2xx count and the runner's result line.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
