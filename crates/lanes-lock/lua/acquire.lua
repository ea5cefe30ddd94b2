-- Take a lock if it is free, with a new fencing token.
--
-- KEYS[1]  holder: HASH {owner, fence}, expires with the lock's TTL
-- KEYS[2]  fence counter: STRING, the last fencing token handed out for this lock key (never expires)
-- KEYS[3]  signal: LIST of release wake-ups for blocked waiters
-- ARGV[1]  owner token (random, one per acquisition attempt)
-- ARGV[2]  TTL, milliseconds
--
-- Returns {'1', fence, ttl_ms} when taken, {'0', holder's fence, holder's ttl left in ms} when
-- held by someone else, all as strings. A repeated call by the same owner (a retry after a lost
-- reply) finds its own lock and reports it taken again, with the same fence and a fresh TTL.
--
-- Fencing tokens never pass through a Lua number (a double): they are read back as the
-- counter's string, so they stay exact up to 2^63.
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'1', redis.call('HGET', KEYS[1], 'fence'), ARGV[2]}
end
if owner then
  return {'0', redis.call('HGET', KEYS[1], 'fence') or '0', tostring(redis.call('PTTL', KEYS[1]))}
end
redis.call('INCR', KEYS[2])
local fence = redis.call('GET', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'fence', fence)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
-- Wake-ups queued while the lock was free are stale now that it is held.
redis.call('DEL', KEYS[3])
return {'1', fence, ARGV[2]}
