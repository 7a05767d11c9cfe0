-- wrk script for the avro suite (bench/run --suite avro): POST the same JSON order (the shape of
-- bench/order.avsc) to whichever route the URL names (/json, /json-checked, /avro), with an id
-- (the event key) unique per request, and count the answers that are not 202. Every body has the
-- same length: the id is "o-<thread>-<8-digit counter>" (bench/run's probe sends "o-9-00000000",
-- thread 9 never exists at -t2, so the event sizes it reports are those of the measured bodies).
-- wrk counts only non-2xx/3xx as errors; done() prints "Non-202 replies: N", which bench/run
-- adds to the error count.

local counter = 0
local thread_no = 0
local non202 = 0
local threads = {}
local next_thread_id = 0

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
   table.insert(threads, thread)
end

function init(args)
   thread_no = thread_id or 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local body = string.format('{"id":"o-%d-%08d","customerId":"c-%05d","placedAt":"2026-11-26T07:15:42.123Z",'
      .. '"currency":"EUR","total":"42.50","channel":"web","items":['
      .. '{"sku":"SKU-10042","quantity":2,"unitPrice":"12.50"},'
      .. '{"sku":"SKU-20017","quantity":1,"unitPrice":"17.50"}]}',
      thread_no, counter % 100000000, counter % 100000)
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
