-- Starts (or resumes) one collection of a channel: claims the checkpoint for the caller's
-- fencing token, and records the channel's counts at the first attempt of this task.
-- KEYS[1] checkpoint hash, KEYS[2] this task's base key (same hash tag).
-- ARGV[1] fencing token, ARGV[2] base TTL in ms.
-- Returns {0, fence} when a newer holder claimed the channel, else
-- {1, last_id, bytes, messages, images, total, base}.
local fence = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
if fence < current then
  return {0, current}
end
redis.call('HSET', KEYS[1], 'fence', ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'last_id', 'bytes', 'messages', 'images', 'total')
local messages, images = f[3] or '0', f[4] or '0'
redis.call('SET', KEYS[2], messages .. ',' .. images, 'NX', 'PX', ARGV[2])
local base = redis.call('GET', KEYS[2])
return {1, tonumber(f[1] or '0'), tonumber(f[2] or '0'), tonumber(messages), tonumber(images),
  tonumber(f[5] or '0'), base}
