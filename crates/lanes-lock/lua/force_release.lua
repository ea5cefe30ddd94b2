-- Operator override: delete a lock whoever holds it, and wake one blocked waiter. The fence
-- counter is kept, so the next holder's token is still higher than the evicted one's.
--
-- KEYS[1]  holder: HASH {owner, fence}
-- KEYS[2]  signal: LIST of release wake-ups
-- ARGV[1]  signal list TTL, milliseconds
--
-- Returns 1 when a lock was deleted, 0 when there was none.
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('RPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], -16, -1)
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
