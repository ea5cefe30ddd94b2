-- Take one slot of a distributed semaphore, on the Redis clock.
--
-- KEYS[1]  holders: ZSET member = holder id, score = lease expiry (milliseconds since the epoch)
-- ARGV[1]  capacity (>= 1)
-- ARGV[2]  holder id
-- ARGV[3]  lease TTL, milliseconds
--
-- Expired leases are dropped first (their holders stopped renewing). A holder that is already
-- in the set gets its lease renewed (so a retried call after a lost reply is harmless).
-- Returns {1, expiry, now} when the slot is taken, {0, earliest expiry among holders, now}
-- when the semaphore is full.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local expiry = now + tonumber(ARGV[3])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[2]) or redis.call('ZCARD', KEYS[1]) < capacity then
  redis.call('ZADD', KEYS[1], expiry, ARGV[2])
  -- The set stops mattering when its last lease expires.
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]) + 1)
  return {1, expiry, now}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]), now}
