-- Renew one holder's lease of a distributed semaphore, on the Redis clock.
--
-- KEYS[1]  holders ZSET (member = holder id, score = lease expiry in milliseconds)
-- ARGV[1]  holder id
-- ARGV[2]  lease TTL, milliseconds
--
-- Returns the new expiry, or 0 when the lease was already lost (expired or removed): a lost
-- lease is never revived, because its slot may belong to someone else by now.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return 0
end
if tonumber(score) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1)
return expiry
