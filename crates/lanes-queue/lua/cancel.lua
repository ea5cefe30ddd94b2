-- Cancel a task: a waiting one is removed for good at once; a running one is asked to stop.
-- KEYS: task, ready, delayed, stop, stats
-- ARGV: id, result_ttl_ms
-- Returns 'cancelled', 'stopping', 'missing', or 'done:<state>' when it had already finished.
local tkey, ready, delayed, stop, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, ttl = ARGV[1], tonumber(ARGV[2])
local state = redis.call('HGET', tkey, 'state')
if not state then return 'missing' end
if state == 'queued' or state == 'scheduled' or state == 'retrying' then
  redis.call('ZREM', ready, id)
  redis.call('ZREM', delayed, id)
  redis.call('HSET', tkey, 'state', 'cancelled', 'finished', int(now_ms()), 'error', 'cancelled while ' .. state)
  redis.call('PEXPIRE', tkey, ttl)
  redis.call('HINCRBY', stats, 'cancelled', 1)
  return 'cancelled'
elseif state == 'running' then
  redis.call('SADD', stop, id)
  redis.call('HSET', tkey, 'stop_requested', int(now_ms()))
  return 'stopping'
end
return 'done:' .. state
