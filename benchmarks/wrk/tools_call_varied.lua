-- wrk script: authenticated tools/call search_knowledgebase, cycling through many queries so a large
-- knowledge base is searched broadly rather than one hot query.
-- QUERIES="w1 w2|w3 w4|..." TOKEN=... wrk -t2 -c64 -d10s -s benchmarks/wrk/tools_call_varied.lua http://127.0.0.1:8080/mcp
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")

local bodies = {}
for query in string.gmatch(os.getenv("QUERIES") or "replication lag", "[^|]+") do
  bodies[#bodies + 1] = string.format(
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_knowledgebase","arguments":{"query":"%s","limit":5}}}',
    query)
end
local next_body = 0

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end

-- `done`: non-2xx count and the runner's result line.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
