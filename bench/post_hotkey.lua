-- wrk script for the hot-key POST (bench/run --suite table): the same POST as post.lua, but every
-- request carries the same customerId, so every event has the same key and goes to one partition
-- (the Kafka path's per-partition ordering and batching with no spread). The key is as long as
-- post.lua's are at a few million requests per thread, so the bodies are about the same size.

function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.body = '{"customerId":"c-hotkey00","amount":12.5}'
end
