-- Cancel a batch: mark it cancelled, cancel its waiting children for good (each counts as a
-- cancelled child, so the last one still enqueues the finalize task), and ask its running
-- children to stop through the queue's stop set (their workers see it on the next heartbeat).
-- KEYS: batch, ready, delayed, stop, stats, signal, seq, kheld, kowner, events
-- ARGV: batch id, result_ttl_ms, task key prefix, lane key prefix, batch key prefix
-- Returns 'missing', 'done:<state>' when every child had already ended, else {removed, stopping}.
local bkey, stop = KEYS[1], KEYS[4]
local bid, ttl, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local KK = {ready = KEYS[2], delayed = KEYS[3], signal = KEYS[6], seq = KEYS[7], stats = KEYS[5], kheld = KEYS[8], kowner = KEYS[9], lane_prefix = ARGV[4]}
local BK = {prefix = ARGV[5], events = KEYS[10], ttl = ttl, task_prefix = prefix, ready = KK.ready, seq = KK.seq, signal = KK.signal, stats = KK.stats}
local g = redis.call('HMGET', bkey, 'state', 'children', 'finished')
if not g[1] then return 'missing' end
if g[3] or g[1] == 'finalizing' then return 'done:' .. g[1] end
local now = now_ms()
if g[1] ~= 'cancelled' then
  redis.call('HSET', bkey, 'state', 'cancelled', 'cancelled', int(now))
  batch_event(BK, bid, bkey, 'cancelling')
end
local removed, stopping = 0, 0
for id in string.gmatch(g[2] or '', '[^,]+') do
  local tkey = prefix .. id
  local f = redis.call('HMGET', tkey, 'state', 'key', 'kpol', 'kconc', 'lane', 'batch', 'fin_of')
  local state = f[1]
  if state == 'queued' or state == 'scheduled' or state == 'retrying' then
    cancel_waiting(KK, prefix, tkey, id, f, ttl, now)
    batch_task_ended(BK, tkey, f[6], f[7], 'cancelled', nil, 'batch cancelled', now)
    removed = removed + 1
  elseif state == 'running' then
    redis.call('SADD', stop, id)
    redis.call('HSET', tkey, 'stop_requested', int(now))
    stopping = stopping + 1
  end
end
return {removed, stopping}
