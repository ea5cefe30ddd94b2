-- Read-only snapshot of a lock's holder, taken atomically.
--
-- KEYS[1]  holder: HASH {owner, fence}
--
-- Returns {owner, fence, ttl left in ms} as strings, or an empty array when the lock is free.
local held = redis.call('HMGET', KEYS[1], 'owner', 'fence')
if not held[1] then
  return {}
end
return {held[1], held[2] or '', tostring(redis.call('PTTL', KEYS[1]))}
