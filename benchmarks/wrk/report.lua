-- Shared by the wrk scripts here (loaded with dofile from the script's own directory): a `done`
-- that reports non-2xx answers, so a run full of 401s or 429s cannot pass as fast, and one
-- machine-readable line for the benchmark runner (latencies in microseconds).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("non-200: %d\n", e.status))
  io.write(string.format(
    'wrk-result {"requests":%d,"duration_us":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
