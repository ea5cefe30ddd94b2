-- Write a batch's result from one of its tasks (a child or the finalize task), fenced by that
-- task's lease.
-- KEYS: task
-- ARGV: token, batch key prefix, result JSON
-- Returns 1, 0 for a stale lease, -1 when the task belongs to no batch, -2 when the batch is gone.
local f = redis.call('HMGET', KEYS[1], 'token', 'state', 'batch', 'fin_of')
if f[1] ~= ARGV[1] or f[2] ~= 'running' then return 0 end
local bid = f[3] or f[4]
if not bid then return -1 end
local bkey = ARGV[2] .. bid
if redis.call('EXISTS', bkey) == 0 then return -2 end
redis.call('HSET', bkey, 'result', ARGV[3])
return 1
