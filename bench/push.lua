-- wrk script: POST one push (body from $BENCH_BODY, else a single-recipient push) and, when done,
-- print one parseable line:
--   WRK_RESULT {"requests":N,"duration_us":N,"rps":F,"p50_us":N,"p99_us":N,"mean_us":F,"max_us":N,
--               "errors":{"connect":N,"read":N,"write":N,"status":N,"timeout":N}}
-- (errors.status counts answers that are not 2xx/3xx.)

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
  or '{"token":"t","application":"1","globalmessage":"hello","data":[{"number":"5511987654321"}]}'
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"rps":%.2f,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
