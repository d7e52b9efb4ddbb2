-- wrk script: GET /health (no auth): the HTTP stack and the router alone.
-- wrk -t2 -c32 -d10s -s benchmarks/wrk/health.lua http://127.0.0.1:8080/health
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
