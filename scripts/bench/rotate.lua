-- wrk script for scripts/bench_webhook.py: sends pre-built, pre-signed HTTP/1.1 requests
-- in turn (wrk -s rotate.lua URL -- FILE). FILE holds each request as its length in
-- bytes on a line, then the bytes. Signing in Lua per request would cost wrk more than
-- the servers spend; the requests are built and signed beforehand instead.
local requests = {}
local count = 0
sent = 0
non200 = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  while true do
    local line = file:read("*l")
    if not line then break end
    count = count + 1
    requests[count] = file:read(tonumber(line))
  end
  file:close()
end

function request()
  sent = sent + 1
  return requests[(sent - 1) % count + 1]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests_)
  local bad = 0
  local total_sent = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non200")
    total_sent = total_sent + thread:get("sent")
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "sent": %d, "non200": %d, ' ..
    '"errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, total_sent, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
