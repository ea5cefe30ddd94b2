-- Lease up to n tasks to a worker, promoting due delayed tasks first.
-- KEYS: ready, delayed, leased, seq, signal
-- ARGV: task key prefix, n, worker id, lease_ms
-- Returns {now, next_due_ms or -1, id, token, kind, payload, enc, attempts, max_retries, soft_ms, hard_ms, created, ...}
local ready, delayed, leased, seq, signal = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, n, worker, lease_ms = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local now = now_ms()

local due = redis.call('ZRANGE', delayed, '-inf', int(now), 'BYSCORE', 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local tkey = prefix .. id
  local score = redis.call('HGET', tkey, 'score')
  if score then
    redis.call('ZADD', ready, score, id)
    redis.call('HSET', tkey, 'state', 'queued')
  end
  redis.call('ZREM', delayed, id)
end

local out = {now, -1}
local popped = redis.call('ZPOPMIN', ready, n)
for i = 1, #popped, 2 do
  local id = popped[i]
  local tkey = prefix .. id
  if redis.call('EXISTS', tkey) == 1 then
    local token = redis.call('INCR', seq)
    local attempts = redis.call('HINCRBY', tkey, 'attempts', 1)
    redis.call('HSET', tkey, 'state', 'running', 'worker', worker, 'token', token, 'started', int(now))
    redis.call('ZADD', leased, int(now + lease_ms), id)
    local f = redis.call('HMGET', tkey, 'kind', 'payload', 'enc', 'max_retries', 'soft_ms', 'hard_ms', 'created')
    table.insert(out, id)
    table.insert(out, token)
    table.insert(out, f[1] or '')
    table.insert(out, f[2] or '')
    table.insert(out, f[3] or '')
    table.insert(out, attempts)
    table.insert(out, f[4] or '')
    table.insert(out, f[5] or '')
    table.insert(out, f[6] or '')
    table.insert(out, f[7] or '0')
  end
end
if redis.call('ZCARD', ready) == 0 then redis.call('DEL', signal) end
local nxt = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if #nxt > 0 then out[2] = tonumber(nxt[2]) end
return out
