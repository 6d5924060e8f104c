-- wrk: POST a small body; count every answer by status across threads and
-- print them with wrk's socket errors and the latency percentiles (microseconds).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or "x"
wrk.headers["Content-Type"] = "text/plain"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d %d\n", status, count))
  end
  local e = summary.errors
  io.write(string.format("errors connect=%d read=%d write=%d timeout=%d\n", e.connect, e.read, e.write, e.timeout))
  io.write(string.format("latency p50=%d p99=%d max=%d\n", latency:percentile(50), latency:percentile(99), latency.max))
end
