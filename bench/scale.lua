-- wrk script for the scale bench (bench/run --suite scale): GET /tables/bench/<key> for a key
-- drawn uniformly from a file of keys (one per line: the driver's keys kept by the instance asked,
-- or kept by the other one, whose reads are forwarded), and a count of answers that are not 200.
--   wrk ... -s bench/scale.lua URL -- KEYFILE
local keys = {}
local non200 = 0
local threads = {}
local next_thread_id = 0

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
   table.insert(threads, thread)
end

function init(args)
   for line in io.lines(args[1]) do
      table.insert(keys, line)
   end
   math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

function request()
   return wrk.format("GET", "/tables/bench/" .. keys[math.random(1, #keys)])
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
