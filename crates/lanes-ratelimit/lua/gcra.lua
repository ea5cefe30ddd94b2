-- GCRA decision for one named limiter, on the Redis clock (one clock for every machine).
--
-- KEYS[1]  theoretical arrival time (TAT) of the limiter, microseconds since the epoch
-- KEYS[2]  pause-until set by pause_for, microseconds since the epoch
-- ARGV[1]  emission interval T, microseconds (period / count, rounded up)
-- ARGV[2]  burst b (grants allowed at one instant), >= 1
-- ARGV[3]  tokens n asked for, 1 <= n <= b
-- ARGV[4]  reserve ahead: grant a slot that starts at most this many microseconds from now
--          (0 = decide for this instant only)
--
-- Returns {granted, at, now}: granted is 1 when the caller owns the slot starting at `at`
-- (at >= now; at - now <= ARGV[4]); 0 when the earliest conforming slot `at` lies further
-- ahead, in which case nothing was written.
--
-- A grant at time `at` is the GCRA conformance test applied to an arrival at `at`:
-- conforming iff at >= TAT + (n - b) * T, then TAT := max(TAT, at) + n * T. Grant times never
-- decrease from one call to the next, so any closed window of length W holds at most
-- floor(W / T) + b grants.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])

local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local at = tat + (n - burst) * interval
if at < now then
  at = now
end
local pause = tonumber(redis.call('GET', KEYS[2]) or 0)
if at < pause then
  at = pause
end
if at - now > reserve then
  return {0, at, now}
end

if at > tat then
  tat = at
end
tat = tat + n * interval
-- The TAT stops mattering once it is in the past (a missing key reads as "now"), so it expires
-- then: an idle limiter leaves nothing behind.
redis.call('SET', KEYS[1], string.format('%d', tat), 'PXAT', math.floor(tat / 1000) + 1)
return {1, at, now}
