-- wrk-report.lua - GET the URL wrk is given; at the end print one line "BENCH {json}" with the
-- request count, run time, errors and latency percentiles (microseconds) for tests/bench.

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH {\"requests\":%d,\"duration_us\":%d,\"socket_errors\":%d,\"status_errors\":%d," ..
      "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f}\n",
      summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean))
end
