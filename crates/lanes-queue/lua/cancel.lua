-- Cancel a task: a waiting one is removed for good at once (its key's next task moves up); a
-- running one is asked to stop.
-- KEYS: task, ready, delayed, stop, stats, signal, seq, kheld, kowner
-- ARGV: id, result_ttl_ms, task key prefix, lane key prefix, batch key prefix, batch events key
-- Returns 'cancelled', 'stopping', 'missing', or 'done:<state>' when it had already finished.
local tkey, ready, delayed, stop, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, ttl, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local KK = {ready = ready, delayed = delayed, signal = KEYS[6], seq = KEYS[7], stats = stats, kheld = KEYS[8], kowner = KEYS[9], lane_prefix = ARGV[4]}
local f = redis.call('HMGET', tkey, 'state', 'key', 'kpol', 'kconc', 'lane', 'batch', 'fin_of')
local state = f[1]
if not state then return 'missing' end
if state == 'queued' or state == 'scheduled' or state == 'retrying' then
  local now = now_ms()
  cancel_waiting(KK, prefix, tkey, id, f, ttl, now)
  if f[6] or f[7] then
    local BK = {prefix = ARGV[5], events = ARGV[6], ttl = ttl, task_prefix = prefix, ready = ready, seq = KK.seq, signal = KK.signal, stats = stats}
    batch_task_ended(BK, tkey, f[6], f[7], 'cancelled', nil, 'cancelled while ' .. state, now)
  end
  return 'cancelled'
elseif state == 'running' then
  redis.call('SADD', stop, id)
  redis.call('HSET', tkey, 'stop_requested', int(now_ms()))
  return 'stopping'
end
return 'done:' .. state
