-- Enqueue one or many tasks in one round trip.
-- KEYS: ready, delayed, signal, seq, stats
-- ARGV: task key prefix, n, then n groups of 9:
--       id, kind, payload, enc, prio (0..9, higher first), delay_ms, max_retries, soft_ms, hard_ms
local ready, delayed, signal, seq, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, n = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local woke = 0
for i = 0, n - 1 do
  local b = 3 + i * 9
  local id, kind, payload, enc = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local prio, delay = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local s = redis.call('INCR', seq)
  -- FIFO within a priority level; higher priority sorts first. 1e14 tasks per level fit a double.
  local score = int((9 - prio) * 1e14 + s)
  local tkey = prefix .. id
  redis.call('HSET', tkey, 'kind', kind, 'payload', payload, 'enc', enc, 'prio', prio,
    'score', score, 'attempts', 0, 'created', int(now))
  if ARGV[b + 6] ~= '' then redis.call('HSET', tkey, 'max_retries', ARGV[b + 6]) end
  if ARGV[b + 7] ~= '' then redis.call('HSET', tkey, 'soft_ms', ARGV[b + 7]) end
  if ARGV[b + 8] ~= '' then redis.call('HSET', tkey, 'hard_ms', ARGV[b + 8]) end
  if delay > 0 then
    redis.call('HSET', tkey, 'state', 'scheduled', 'run_at', int(now + delay))
    redis.call('ZADD', delayed, int(now + delay), id)
  else
    redis.call('HSET', tkey, 'state', 'queued')
    redis.call('ZADD', ready, score, id)
  end
  woke = woke + 1
end
redis.call('HINCRBY', stats, 'enqueued', n)
-- One wake-up per task (at most 16): each blocked fetcher takes one and fetches for all its free slots.
for _ = 1, math.min(woke, 16) do redis.call('LPUSH', signal, 1) end
redis.call('LTRIM', signal, 0, 15)
return now
