-- End an attempt that did not succeed, if its fencing token is still current.
-- A task that ends for good (dead, failed, cancelled) releases its key; a retry keeps it.
-- KEYS: task, leased, delayed, dead, stats, stop, signal, ready, seq, kheld, kowner
-- ARGV: id, token, error, mode (retry|dead|failed|cancelled), delay_ms, result_ttl_ms, dead_ttl_ms,
--       dead_cap, task key prefix, lane key prefix, batch key prefix, batch events key, write id
-- A write id ('' = none) makes a resend safe: when this very write was recorded already (its
-- reply was lost), the resend returns 1 instead of 0.
local tkey, leased, delayed, dead, stats, stop, signal = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, token, err, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local delay, ttl, dead_ttl, dead_cap = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local prefix = ARGV[9]
local KK = {ready = KEYS[8], delayed = delayed, signal = signal, seq = KEYS[9], stats = stats, kheld = KEYS[10], kowner = KEYS[11], lane_prefix = ARGV[10]}
local wid = ARGV[13] or ''
local f = redis.call('HMGET', tkey, 'token', 'state', 'key', 'kpol', 'kconc', 'batch', 'fin_of', 'wid')
if f[1] ~= token or f[2] ~= 'running' then
  if wid ~= '' and f[8] == wid then return 1 end
  return 0
end
local now = now_ms()
if wid ~= '' then redis.call('HSET', tkey, 'wid', wid) end
redis.call('ZREM', leased, id)
redis.call('SREM', stop, id)
if mode == 'retry' then
  redis.call('HSET', tkey, 'state', 'retrying', 'error', err, 'run_at', int(now + delay), 'token', '')
  redis.call('ZADD', delayed, int(now + delay), id)
  redis.call('HINCRBY', stats, 'retried', 1)
  -- Wake one idle fetcher so it learns the new earliest due time.
  redis.call('LPUSH', signal, 1)
  redis.call('LTRIM', signal, 0, 15)
elseif mode == 'cancelled' then
  redis.call('HSET', tkey, 'state', 'cancelled', 'error', err, 'finished', int(now), 'token', '')
  redis.call('PEXPIRE', tkey, ttl)
  redis.call('HINCRBY', stats, 'cancelled', 1)
else
  dead_letter(dead, tkey, id, mode, err, now, dead_ttl, dead_cap, prefix)
  redis.call('HINCRBY', stats, mode, 1)
end
if mode ~= 'retry' and f[3] then release_key(KK, prefix, id, f[3], f[4], f[5], now) end
if mode ~= 'retry' and (f[6] or f[7]) then
  local BK = {prefix = ARGV[11], events = ARGV[12], ttl = ttl, task_prefix = prefix, ready = KK.ready, seq = KK.seq, signal = signal, stats = stats}
  batch_task_ended(BK, tkey, f[6], f[7], mode == 'cancelled' and 'cancelled' or 'failed', nil, err, now)
end
return 1
