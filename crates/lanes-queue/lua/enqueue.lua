-- Enqueue one or many tasks in one round trip.
-- KEYS: ready, delayed, signal, seq, stats, kheld, kowner
-- ARGV: task key prefix, lane key prefix, n, then n groups of 12:
--       id, kind, payload, enc, prio (0..9, higher first), delay_ms, max_retries, soft_ms, hard_ms,
--       key ('' for none), key policy (serial|reject|dedupe), key concurrency
-- Returns one entry per task: 1 for a new task, or the id of the existing task a dedupe matched.
-- A reject conflict enqueues nothing and returns {'busy', key, owner id}.
local ready, delayed, signal, seq, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, n = ARGV[1], tonumber(ARGV[3])
local KK = {ready = ready, delayed = delayed, signal = signal, seq = seq, stats = stats, kheld = KEYS[6], kowner = KEYS[7], lane_prefix = ARGV[2]}
local G = 12

-- Reject conflicts refuse the whole call before anything is written.
local claimed = {}
for i = 0, n - 1 do
  local b = 4 + i * G
  local key, policy = ARGV[b + 9], ARGV[b + 10]
  if key ~= '' and policy == 'reject' then
    local owner = live_owner(KK, key, prefix, policy, 1) or claimed[key]
    if owner then return {'busy', key, owner} end
    claimed[key] = ARGV[b]
  end
end

local now = now_ms()
local out = {}
local added = 0
for i = 0, n - 1 do
  local b = 4 + i * G
  local id, kind, payload, enc = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local prio, delay = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local key, policy, conc = ARGV[b + 9], ARGV[b + 10], tonumber(ARGV[b + 11])
  local s = redis.call('INCR', seq)
  -- FIFO within a priority level; higher priority sorts first. 1e14 tasks per level fit a double.
  local score = int((9 - prio) * 1e14 + s)
  local where, owner = 'slot', nil
  if key ~= '' then where, owner = admit(KK, prefix, id, key, policy, conc, s) end
  if where == 'busy' then
    table.insert(out, owner)
  else
    local tkey = prefix .. id
    redis.call('HSET', tkey, 'kind', kind, 'payload', payload, 'enc', enc, 'prio', prio,
      'score', score, 'attempts', 0, 'created', int(now))
    if ARGV[b + 6] ~= '' then redis.call('HSET', tkey, 'max_retries', ARGV[b + 6]) end
    if ARGV[b + 7] ~= '' then redis.call('HSET', tkey, 'soft_ms', ARGV[b + 7]) end
    if ARGV[b + 8] ~= '' then redis.call('HSET', tkey, 'hard_ms', ARGV[b + 8]) end
    if delay > 0 then redis.call('HSET', tkey, 'run_at', int(now + delay)) end
    if key ~= '' then redis.call('HSET', tkey, 'key', key, 'kpol', policy, 'kconc', conc) end
    if where == 'lane' then
      redis.call('HSET', tkey, 'state', 'queued', 'lane', 1)
    elseif delay > 0 then
      redis.call('HSET', tkey, 'state', 'scheduled')
      redis.call('ZADD', delayed, int(now + delay), id)
    else
      redis.call('HSET', tkey, 'state', 'queued')
      redis.call('ZADD', ready, score, id)
    end
    added = added + 1
    table.insert(out, 1)
  end
end
redis.call('HINCRBY', stats, 'enqueued', added)
-- One wake-up per task (at most 16): each blocked fetcher takes one and fetches for all its free slots.
for _ = 1, math.min(added, 16) do redis.call('LPUSH', signal, 1) end
redis.call('LTRIM', signal, 0, 15)
return out
