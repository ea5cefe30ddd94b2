-- Write a running task's progress, if its fencing token is still current.
-- KEYS: task
-- ARGV: token, progress JSON
local f = redis.call('HMGET', KEYS[1], 'token', 'state')
if f[1] ~= ARGV[1] or f[2] ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
