-- wrk script: POST /api/login with a valid password, the login flood of issue #13 §B.10.
-- A user bob with this password (`postgres-mcp user add`, bcrypt cost 12) and a failed-auth limit
-- the flood cannot reach (PGMCP_AUTH_RATE_LIMIT_FAILURES=100000: logins in flight hold its units):
-- wrk -t1 -c16 -d14s -s benchmarks/wrk/login.lua http://127.0.0.1:8080/api/login
-- and meanwhile: wrk -t1 -c8 -d10s --latency -s benchmarks/wrk/ping.lua http://127.0.0.1:8080/mcp
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bob","password":"correct horse battery"}'
