-- wrk script for the streamgate bench: POST a small JSON command with a customerId that varies
-- per request, so the gateway's key extraction and partitioning see distinct keys. Each wrk
-- thread has its own Lua state, so the counter is per thread; setup() (run once per thread in
-- the main state) hands each thread an id that keeps the keys of different threads apart.

local counter = 0
local prefix = "c-"
local next_thread_id = 0

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
end

function init(args)
   prefix = "c-" .. tostring(thread_id or 0) .. "-"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local body = '{"customerId":"' .. prefix .. counter .. '","amount":12.5}'
   return wrk.format("POST", nil, nil, body)
end
