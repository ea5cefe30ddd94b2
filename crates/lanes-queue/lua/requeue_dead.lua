-- Put a dead-lettered task back on its queue with a fresh retry budget. A keyed task is admitted
-- again like a new one: behind its key's lane, or refused while a reject/dedupe key is taken.
-- KEYS: task, dead, ready, signal, delayed, seq, kheld, kowner, stats
-- ARGV: id, task key prefix, lane key prefix
-- Returns 1 when re-queued, 0 when not in the dead-letter set, {'busy', key, owner} when its key is taken.
local tkey, dead, ready, signal = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, prefix = ARGV[1], ARGV[2]
local KK = {ready = ready, delayed = KEYS[5], signal = signal, seq = KEYS[6], stats = KEYS[9], kheld = KEYS[7], kowner = KEYS[8], lane_prefix = ARGV[3]}
if not redis.call('ZSCORE', dead, id) then return 0 end
local f = redis.call('HMGET', tkey, 'score', 'key', 'kpol', 'kconc')
if not f[1] then
  redis.call('ZREM', dead, id)
  return 0
end
local where, owner = 'slot', nil
if f[2] then
  -- Stand in the lane by a fresh sequence number, like a new arrival.
  where, owner = admit(KK, prefix, id, f[2], f[3], tonumber(f[4]) or 1, redis.call('INCR', KK.seq))
  if where == 'busy' then return {'busy', f[2], owner} end
end
redis.call('ZREM', dead, id)
redis.call('PERSIST', tkey)
redis.call('HSET', tkey, 'state', 'queued', 'attempts', 0, 'token', '')
redis.call('HDEL', tkey, 'finished', 'run_at')
if where == 'lane' then
  redis.call('HSET', tkey, 'lane', 1)
else
  redis.call('ZADD', ready, f[1], id)
  wake(signal)
end
return 1
