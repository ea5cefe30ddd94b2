-- Return expired leases to the queue (or the dead-letter set once retries are spent).
-- Safe to run from any number of workers at once: each expired lease is taken by one run only.
-- A redelivered task keeps its key (its successors keep waiting); a dead one releases it.
-- KEYS: leased, ready, signal, dead, stats, delayed, seq, kheld, kowner
-- ARGV: task key prefix, default max_retries, per-kind max_retries as JSON object, dead_ttl_ms,
--       dead_cap, lane key prefix, batch key prefix, batch events key, result_ttl_ms
local leased, ready, signal, dead, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, default_max = ARGV[1], tonumber(ARGV[2])
local limits = cjson.decode(ARGV[3])
local dead_ttl, dead_cap = tonumber(ARGV[4]), tonumber(ARGV[5])
local KK = {ready = ready, delayed = KEYS[6], signal = signal, seq = KEYS[7], stats = stats, kheld = KEYS[8], kowner = KEYS[9], lane_prefix = ARGV[6]}
local now = now_ms()
local expired = redis.call('ZRANGE', leased, '-inf', int(now), 'BYSCORE', 'LIMIT', 0, 200)
local requeued = 0
for _, id in ipairs(expired) do
  redis.call('ZREM', leased, id)
  local tkey = prefix .. id
  local f = redis.call('HMGET', tkey, 'kind', 'attempts', 'max_retries', 'score', 'worker', 'state', 'key', 'kpol', 'kconc', 'batch', 'fin_of')
  if f[6] == 'running' then
    local max = tonumber(f[3]) or tonumber(limits[f[1]]) or default_max
    local attempts = tonumber(f[2]) or 0
    local why = 'lease expired: worker ' .. (f[5] or '?') .. ' stopped renewing it (attempt ' .. attempts .. ')'
    redis.call('HINCRBY', stats, 'expired', 1)
    if attempts > max then
      dead_letter(dead, tkey, id, 'dead', why, now, dead_ttl, dead_cap, prefix)
      redis.call('HINCRBY', stats, 'dead', 1)
      if f[7] then release_key(KK, prefix, id, f[7], f[8], f[9], now) end
      if f[10] or f[11] then
        local BK = {prefix = ARGV[7], events = ARGV[8], ttl = tonumber(ARGV[9]), task_prefix = prefix, ready = ready, seq = KK.seq, signal = signal, stats = stats}
        batch_task_ended(BK, tkey, f[10], f[11], 'failed', nil, why, now)
      end
    else
      redis.call('HSET', tkey, 'state', 'queued', 'error', why, 'token', '')
      redis.call('ZADD', ready, f[4], id)
      redis.call('LPUSH', signal, 1)
      requeued = requeued + 1
    end
  end
end
redis.call('LTRIM', signal, 0, 15)
return {#expired, requeued}
