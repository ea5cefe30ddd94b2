-- Record success for a lease, if its fencing token is still current; release its key; optionally
-- lease the worker's next task in the same call (one round trip per task on a busy queue).
-- KEYS: task, leased, stats, ready, delayed, seq, signal, kheld, kowner
-- ARGV: id, token, result, result_ttl_ms, task key prefix, n to fetch (0 = none), worker id,
--       lease_ms, lane key prefix, batch key prefix, batch events key, write id ('' = none)
-- Returns {0} when the token is stale, else {1, now, next_due_ms or -1, then 11 fields per leased task}.
-- A write id makes a resend safe: when this very write was recorded already (its reply was lost),
-- the resend gets {1, now, -1} (nothing more leased) instead of {0}.
local tkey, leased, stats = KEYS[1], KEYS[2], KEYS[3]
local ready, delayed, seq, signal = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, token, result, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local prefix, n, worker, lease_ms = ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local KK = {ready = ready, delayed = delayed, signal = signal, seq = seq, stats = stats, kheld = KEYS[8], kowner = KEYS[9], lane_prefix = ARGV[9]}
local wid = ARGV[12] or ''
local f = redis.call('HMGET', tkey, 'token', 'state', 'error', 'key', 'kpol', 'kconc', 'batch', 'fin_of', 'wid')
if f[1] ~= token or f[2] ~= 'running' then
  if wid ~= '' and f[9] == wid then return {1, now_ms(), -1} end
  return {0}
end
local now = now_ms()
if wid ~= '' then redis.call('HSET', tkey, 'wid', wid) end
redis.call('ZREM', leased, id)
redis.call('HSET', tkey, 'state', 'succeeded', 'result', result, 'finished', int(now), 'token', '')
if f[3] then redis.call('HDEL', tkey, 'error') end
redis.call('PEXPIRE', tkey, ttl)
redis.call('HINCRBY', stats, 'succeeded', 1)
if f[4] then release_key(KK, prefix, id, f[4], f[5], f[6], now) end
if f[7] or f[8] then
  local BK = {prefix = ARGV[10], events = ARGV[11], ttl = ttl, task_prefix = prefix, ready = ready, seq = seq, signal = signal, stats = stats}
  batch_task_ended(BK, tkey, f[7], f[8], 'succeeded', result, nil, now)
end
local out = {now, -1}
if n > 0 then
  promote_due(ready, delayed, prefix, now)
  lease_tasks(ready, delayed, leased, seq, signal, prefix, n, worker, lease_ms, now, out, false)
end
table.insert(out, 1, 1)
return out
