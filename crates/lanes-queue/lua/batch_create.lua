-- Create a batch and enqueue all its children in one call: the batch hash (counters, children
-- ids, the finalize task to enqueue once the last child ends) and one task hash per child, each
-- marked with `batch` = the batch id. A batch without children finalizes at once.
-- KEYS: batch, ready, delayed, signal, seq, stats, events
-- ARGV: batch id, task key prefix, batch key prefix, result_ttl_ms, total_items, meta JSON,
--       finalize: id ('' for none), kind, payload, enc, prio, max_retries, soft_ms, hard_ms,
--       n, then n groups of 9: id, kind, payload, enc, prio, delay_ms, max_retries, soft_ms, hard_ms
-- Returns 1, or 0 when a batch with this id already exists.
local bkey, ready, delayed, signal, seq, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local bid, prefix = ARGV[1], ARGV[2]
local n = tonumber(ARGV[15])
local G = 9
if redis.call('EXISTS', bkey) == 1 then return 0 end
local now = now_ms()
local ids = {}
for i = 0, n - 1 do
  local b = 16 + i * G
  local id, kind, payload, enc = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local prio, delay = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local s = redis.call('INCR', seq)
  local score = int((9 - prio) * 1e14 + s)
  local tkey = prefix .. id
  redis.call('HSET', tkey, 'kind', kind, 'payload', payload, 'enc', enc, 'prio', prio,
    'score', score, 'attempts', 0, 'created', int(now), 'batch', bid)
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
  ids[#ids + 1] = id
end
redis.call('HSET', bkey, 'state', 'running', 'created', int(now), 'total_children', n,
  'children_done', 0, 'children_succeeded', 0, 'children_failed', 0, 'children_cancelled', 0,
  'total_items', ARGV[5], 'processed_items', 0, 'success_count', 0, 'error_count', 0,
  'meta', ARGV[6], 'children', table.concat(ids, ','))
if ARGV[7] ~= '' then
  redis.call('HSET', bkey, 'fin_id', ARGV[7], 'fin_kind', ARGV[8], 'fin_payload', ARGV[9],
    'fin_enc', ARGV[10], 'fin_prio', ARGV[11], 'fin_max_retries', ARGV[12],
    'fin_soft_ms', ARGV[13], 'fin_hard_ms', ARGV[14])
end
redis.call('HINCRBY', stats, 'enqueued', n)
for _ = 1, math.min(n, 16) do redis.call('LPUSH', signal, 1) end
redis.call('LTRIM', signal, 0, 15)
local BK = {prefix = ARGV[3], events = KEYS[7], ttl = tonumber(ARGV[4]), task_prefix = prefix,
  ready = ready, seq = seq, signal = signal, stats = stats}
batch_event(BK, bid, bkey, 'created')
if n == 0 then batch_children_done(BK, bid, bkey, now) end
return 1
