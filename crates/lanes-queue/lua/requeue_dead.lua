-- Put a dead-lettered task back on its queue with a fresh retry budget.
-- KEYS: task, dead, ready, signal
-- ARGV: id
local tkey, dead, ready, signal = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1]
if redis.call('ZREM', dead, id) == 0 then return 0 end
local score = redis.call('HGET', tkey, 'score')
if not score then return 0 end
redis.call('PERSIST', tkey)
redis.call('HSET', tkey, 'state', 'queued', 'attempts', 0, 'token', '')
redis.call('HDEL', tkey, 'finished')
redis.call('ZADD', ready, score, id)
redis.call('LPUSH', signal, 1)
redis.call('LTRIM', signal, 0, 15)
return 1
