-- Read-only snapshot of a distributed semaphore, on the Redis clock.
--
-- KEYS[1]  holders ZSET (member = holder id, score = lease expiry in milliseconds)
-- Returns {now, holder1, expiry1, holder2, expiry2, ...} as strings, for the leases that have
-- not expired.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {string.format('%d', now)}
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = live[i + 1]
end
return out
