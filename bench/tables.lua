-- wrk script for the tables bench (bench/run --suite tables): GET /tables/<table>/<key> for a
-- key drawn uniformly from the keys sg-bench-load wrote ("k%07d" below the record count), and a
-- count of the answers that are not 200 (wrk itself counts only non-2xx/3xx as errors, and a
-- 404 for a missing row is an error here). The driver passes the table and the record count:
--   wrk ... -s bench/tables.lua URL -- TABLE COUNT
-- The same script drives the bare H2O baseline, which answers every path alike, so both targets
-- pay the same client-side Lua.

local path_prefix = "/tables/bench/"
local count = 1000000
local non200 = 0
local threads = {}
local next_thread_id = 0

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
   table.insert(threads, thread)
end

function init(args)
   if args[1] ~= nil then path_prefix = "/tables/" .. args[1] .. "/" end
   if args[2] ~= nil then count = tonumber(args[2]) end
   -- Different threads must not draw the same sequence.
   math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

function request()
   return wrk.format("GET", path_prefix .. string.format("k%07d", math.random(0, count - 1)))
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
