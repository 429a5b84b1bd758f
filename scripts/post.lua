-- wrk script: POST a chat message to room "load" with the daemon's token.
-- Usage: TOKEN=$(cat persona-data/token) wrk -t2 -c32 -d60s -s scripts/post.lua http://127.0.0.1:7777
local token = os.getenv("TOKEN")
local n = 0
wrk.method = "POST"
wrk.path = "/api/rooms/load/messages"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"author":"load%d","content":"message %d from the load test"}', n % 50, n))
end
done = function(summary, latency, requests)
  io.write(string.format("requests %d, errors %d (status %d), p50 %.1f ms, p99 %.1f ms\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
