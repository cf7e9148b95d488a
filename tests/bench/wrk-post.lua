-- wrk-post.lua - POST /v1/jobs: 3-turn jobs on the backend named "bench". tests/bench stops
-- wrk with SIGINT once the database holds the number of jobs it wants (wrk then reports as
-- usual). No response() hook on purpose: with one, wrk 4.1's latency figures stop adding up
-- (their mean came out at 13 times what the request rate and the connection count allow),
-- while without it they agree with an independent client. Prints "BENCH {json}" like
-- wrk-report.lua.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"scenario":"response_speed_optimization",' ..
   '"interviewer":{"model":"gemma3:1b","backend":"bench"},' ..
   '"candidate":{"model":"gemma3n:latest","backend":"bench"},"max_turns":3}'

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH {\"requests\":%d,\"duration_us\":%d,\"socket_errors\":%d,\"status_errors\":%d," ..
      "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f}\n",
      summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean))
end
