-- wrk -s lab/wrk_report.lua: adds one machine-readable line to wrk's report, with the
-- percentiles its --latency table leaves out (p95, p99.9). lab.loadstats.parse_wrk reads it.
-- Latencies in wrk's Lua API are in microseconds. https://github.com/wg/wrk/blob/master/SCRIPTING
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"p95_ms": %.3f, "p99_9_ms": %.3f, "min_ms": %.3f, ' ..
    '"errors_status": %d, "errors_timeout": %d, "duration_us": %d}\n',
    latency:percentile(95) / 1000.0, latency:percentile(99.9) / 1000.0,
    latency.min / 1000.0, summary.errors.status, summary.errors.timeout, summary.duration))
end
