-- Read-only snapshot of one limiter, on the Redis clock.
--
-- KEYS[1]  TAT (microseconds), KEYS[2]  pause-until (microseconds)
-- Returns {now, tat or 0, pause or 0}; the caller derives tokens and waits from them.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local pause = tonumber(redis.call('GET', KEYS[2]) or 0)
return {now, tat, pause}
