-- Shared helpers, prepended to every script by scripts.rs.

-- Exact decimal text of an integer-valued number (redis.call formats numbers with %.14g).
local function int(x) return string.format('%d', x) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Moves a task to the dead-letter set, keeping the set within its cap and age.
local function dead_letter(dead, tkey, id, state, err, now, dead_ttl, dead_cap, prefix)
  redis.call('HSET', tkey, 'state', state, 'error', err, 'finished', int(now), 'token', '')
  redis.call('PEXPIRE', tkey, dead_ttl)
  redis.call('ZADD', dead, int(now), id)
  redis.call('ZREMRANGEBYSCORE', dead, '-inf', int(now - dead_ttl))
  local over = redis.call('ZCARD', dead) - dead_cap
  if over > 0 then
    local gone = redis.call('ZPOPMIN', dead, over)
    for i = 1, #gone, 2 do redis.call('UNLINK', prefix .. gone[i]) end
  end
end

-- Moves due delayed tasks (at most 1000) to the ready set.
local function promote_due(ready, delayed, prefix, now)
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
end

-- Leases up to n ready tasks to a worker, appending 10 fields per task to out:
-- id, token, kind, payload, enc, attempts, max_retries, soft_ms, hard_ms, created.
-- With want_due, sets out[2] to the next delayed due time (or leaves -1).
local function lease_tasks(ready, delayed, leased, seq, signal, prefix, n, worker, lease_ms, now, out, want_due)
  local popped = redis.call('ZPOPMIN', ready, n)
  for i = 1, #popped, 2 do
    local id = popped[i]
    local tkey = prefix .. id
    local f = redis.call('HMGET', tkey, 'kind', 'payload', 'enc', 'max_retries', 'soft_ms', 'hard_ms', 'created', 'attempts')
    -- A missing hash (expired or deleted behind our back) is skipped, not recreated.
    if f[1] then
      local token = redis.call('INCR', seq)
      local attempts = (tonumber(f[8]) or 0) + 1
      redis.call('HSET', tkey, 'state', 'running', 'worker', worker, 'token', token, 'started', int(now), 'attempts', attempts)
      redis.call('ZADD', leased, int(now + lease_ms), id)
      table.insert(out, id)
      table.insert(out, token)
      table.insert(out, f[1])
      table.insert(out, f[2] or '')
      table.insert(out, f[3] or '')
      table.insert(out, attempts)
      table.insert(out, f[4] or '')
      table.insert(out, f[5] or '')
      table.insert(out, f[6] or '')
      table.insert(out, f[7] or '0')
    end
  end
  -- Fewer than asked: the ready set is empty now, so stale wake-ups can go.
  if #popped < 2 * n then redis.call('DEL', signal) end
  if want_due then
    local nxt = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    if #nxt > 0 then out[2] = tonumber(nxt[2]) end
  end
end
