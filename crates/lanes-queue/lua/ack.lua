-- Record success for a lease, if its fencing token is still current.
-- KEYS: task, leased, stats
-- ARGV: id, token, result, result_ttl_ms
local tkey, leased, stats = KEYS[1], KEYS[2], KEYS[3]
local id, token, result, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local f = redis.call('HMGET', tkey, 'token', 'state')
if f[1] ~= token or f[2] ~= 'running' then return 0 end
local now = now_ms()
redis.call('ZREM', leased, id)
redis.call('HSET', tkey, 'state', 'succeeded', 'result', result, 'finished', int(now), 'token', '')
redis.call('HDEL', tkey, 'error')
redis.call('PEXPIRE', tkey, ttl)
redis.call('HINCRBY', stats, 'succeeded', 1)
return 1
