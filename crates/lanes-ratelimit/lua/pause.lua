-- Pause one limiter until now + ARGV[1] microseconds (Redis clock); never shortens a longer pause.
--
-- KEYS[1]  pause-until (microseconds since the epoch)
-- ARGV[1]  pause length, microseconds
-- Returns {paused_until, now}. The key expires when the pause ends.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
if current >= untl then
  return {current, now}
end
redis.call('SET', KEYS[1], string.format('%d', untl), 'PXAT', math.floor(untl / 1000) + 1)
return {untl, now}
