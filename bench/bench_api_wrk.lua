-- wrk's script for bench/bench_api.py: random users, single lookups, batches or
-- histories, and the latency percentiles as one line of JSON at the end.
-- wrk -s bench/bench_api_wrk.lua URL -- TOKEN USERS single|batch|history BATCH SEED LIMIT
local token, users, kind, batch, limit

function init(args)
  token, users, kind, batch = args[1], tonumber(args[2]), args[3], tonumber(args[4])
  math.randomseed(tonumber(args[5]))
  limit = args[6] or "100"
end

local function user()
  return string.format("u%07d", math.random(0, users - 1))
end

function request()
  local headers = {["Authorization"] = "Bearer " .. token}
  if kind == "single" then
    return wrk.format("GET", "/v1/users/" .. user() .. "/score", headers)
  end
  if kind == "history" then
    return wrk.format("GET", "/v1/users/" .. user() .. "/history?limit=" .. limit, headers)
  end
  local ids = {}
  for i = 1, batch do ids[i] = '"' .. user() .. '"' end
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "/v1/scores/batch", headers,
                    '{"user_ids": [' .. table.concat(ids, ", ") .. "]}")
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "microseconds": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d,'
      .. ' "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
