-- Hand a leased task back without counting the attempt (graceful shutdown).
-- KEYS: task, leased, ready, signal
-- ARGV: id, token
local tkey, leased, ready, signal = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, token = ARGV[1], ARGV[2]
local f = redis.call('HMGET', tkey, 'token', 'state', 'score')
if f[1] ~= token or f[2] ~= 'running' then return 0 end
redis.call('ZREM', leased, id)
redis.call('HINCRBY', tkey, 'attempts', -1)
redis.call('HSET', tkey, 'state', 'queued', 'token', '')
redis.call('ZADD', ready, f[3], id)
redis.call('LPUSH', signal, 1)
redis.call('LTRIM', signal, 0, 15)
return 1
