-- wrk script for the auth suite (bench/run --suite auth): POST a small JSON command (as
-- bench/post.lua) to /post or /post-open, with "Authorization: Bearer TOKEN" when the driver
-- passes a token (wrk ... -s bench/auth_post.lua URL -- TOKEN), and count the answers that are
-- not 202 (done() prints "Non-202 replies: N", which bench/run adds to the errors).

local counter = 0
local prefix = "c-"
local non202 = 0
local threads = {}
local next_thread_id = 0

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
   table.insert(threads, thread)
end

function init(args)
   prefix = "c-" .. tostring(thread_id or 0) .. "-"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if args[1] ~= nil and args[1] ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. args[1]
   end
end

function request()
   counter = counter + 1
   local body = '{"customerId":"' .. prefix .. counter .. '","amount":12.5}'
   return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
   if status ~= 202 then
      non202 = non202 + 1
   end
end

function done(summary, latency, requests)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + (thread:get("non202") or 0)
   end
   io.write(string.format("Non-202 replies: %d\n", total))
end
