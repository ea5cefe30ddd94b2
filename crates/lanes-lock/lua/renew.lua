-- Extend a lock's TTL if, and only if, it is still held by the caller (compare-and-PEXPIRE).
--
-- KEYS[1]  holder: HASH {owner, fence}
-- ARGV[1]  owner token
-- ARGV[2]  TTL, milliseconds
--
-- Returns 1 when renewed, 0 when the lock is gone or belongs to someone else (never revived).
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
