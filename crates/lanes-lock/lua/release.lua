-- Release a lock if, and only if, it is still held by the caller (compare-and-delete), and wake one
-- blocked waiter.
--
-- KEYS[1]  holder: HASH {owner, fence}
-- KEYS[2]  signal: LIST of release wake-ups
-- ARGV[1]  owner token
-- ARGV[2]  signal list TTL, milliseconds
--
-- Returns 1 when released, 0 when the lock was already gone or is someone else's (left alone).
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('RPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], -16, -1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
