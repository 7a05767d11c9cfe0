-- wrk script for the auth suite (bench/run --suite auth): GET the row the URL names (/read/r1 or
-- /read-open/r1), with "Authorization: Bearer TOKEN" when the driver passes a token
-- (wrk ... -s bench/auth_read.lua URL -- TOKEN), and count the answers that are not 200 (done()
-- prints "Non-200 replies: N", which bench/run adds to the errors).

local non200 = 0
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   if args[1] ~= nil and args[1] ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. args[1]
   end
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
