-- Records a channel's checkpoint after a durable write, unless a newer holder claimed it.
-- KEYS[1] checkpoint hash, KEYS[2] this task's base key (same hash tag).
-- ARGV[1] fencing token, ARGV[2] last_id, ARGV[3] bytes, ARGV[4] messages, ARGV[5] images,
-- ARGV[6] total, ARGV[7] new base ('' keeps it), ARGV[8] base TTL in ms.
-- Returns 1 when written, 0 when the fencing token is stale.
local current = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
if tonumber(ARGV[1]) < current then
  return 0
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'last_id', ARGV[2], 'bytes', ARGV[3],
  'messages', ARGV[4], 'images', ARGV[5], 'total', ARGV[6],
  'updated_ms', tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)))
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[2], ARGV[7], 'PX', ARGV[8])
end
return 1
