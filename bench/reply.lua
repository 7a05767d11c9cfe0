-- wrk script for the request-reply bench (bench/run --suite reply): the same POST as post.lua
-- (a small JSON command whose customerId varies per request), and a count of the responses that
-- are not 200. wrk itself counts only non-2xx/3xx as errors, but a sync request whose reply did
-- not arrive in time is answered 202 + Location: that is not a round trip, so it is counted here
-- and printed by done() as "Non-200 replies: N", which bench/run adds to the error count.

local counter = 0
local prefix = "c-"
local non200 = 0
local threads = {}
local next_thread_id = 0

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
   table.insert(threads, thread)
end

function init(args)
   prefix = "r-" .. tostring(thread_id or 0) .. "-"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local body = '{"customerId":"' .. prefix .. counter .. '","amount":12.5}'
   return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
   end
end

function done(summary, latency, requests)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + (thread:get("non200") or 0)
   end
   io.write(string.format("Non-200 replies: %d\n", total))
end
