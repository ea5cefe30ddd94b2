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
    -- pcall: a key that is not a hash is dropped like a missing one, instead of failing every
    -- fetch of the queue. A record whose score is gone or not a number still runs (and fails as
    -- it must), at the back of the lowest priority.
    local score = redis.pcall('HGET', tkey, 'score')
    if type(score) == 'string' or (score == false and redis.call('EXISTS', tkey) == 1) then
      local n = tonumber(score)
      if not n or n ~= n then n = 9e14 + now end
      redis.call('ZADD', ready, n, id)
      redis.call('HSET', tkey, 'state', 'queued')
    end
    redis.call('ZREM', delayed, id)
  end
end

-- Leases up to n ready tasks to a worker, appending 11 fields per task to out:
-- id, token, kind, payload, enc, attempts, max_retries, soft_ms, hard_ms, created, key.
-- With want_due, sets out[2] to the next delayed due time (or leaves -1).
local function lease_tasks(ready, delayed, leased, seq, signal, prefix, n, worker, lease_ms, now, out, want_due)
  local popped = redis.call('ZPOPMIN', ready, n)
  for i = 1, #popped, 2 do
    local id = popped[i]
    local tkey = prefix .. id
    -- A missing hash (expired or deleted behind our back) is skipped, not recreated; so is a key
    -- that is not a hash at all (pcall: one bad record must not fail the fetch of the others).
    -- A hash without a kind is leased anyway: the worker fails it as an unknown kind, so a
    -- corrupted record ends in the dead-letter set instead of vanishing from the queue.
    local f = redis.pcall('HMGET', tkey, 'kind', 'payload', 'enc', 'max_retries', 'soft_ms', 'hard_ms', 'created', 'attempts', 'key')
    if type(f) == 'table' and f.err == nil and (f[1] or redis.call('EXISTS', tkey) == 1) then
      local token = redis.call('INCR', seq)
      local attempts = (tonumber(f[8]) or 0) + 1
      redis.call('HSET', tkey, 'state', 'running', 'worker', worker, 'token', token, 'started', int(now), 'attempts', attempts)
      redis.call('ZADD', leased, int(now + lease_ms), id)
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
      table.insert(out, f[9] or '')
    end
  end
  -- Fewer than asked: the ready set is empty now, so stale wake-ups can go.
  if #popped < 2 * n then redis.call('DEL', signal) end
  if want_due then
    local nxt = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    if #nxt > 0 then out[2] = tonumber(nxt[2]) end
  end
end

-- Keyed lanes. Per queue: kheld (hash key -> slots held: tasks of that key in ready, delayed or
-- running), kowner (hash key -> the holding task, for keys with one slot), and one lane zset per
-- key with the tasks waiting for a slot, in enqueue order. A task takes a slot when admitted and
-- gives it back only when it ends for good, so retries and redeliveries keep their key's order.
-- A task waiting in a lane has field lane = '1' (cleared to '' when it leaves).
-- KK is a table of queue keys: ready, delayed, signal, seq, stats, kheld, kowner, lane_prefix.
-- stats.laned counts the tasks waiting in lanes (they are queued but not in the ready set).

local function wake(signal)
  if redis.call('LLEN', signal) < 16 then redis.call('LPUSH', signal, 1) end
end

-- Gives back the key slot of a task that ended for good, promoting the next task of its lane
-- to the back of the ready set (round robin across keys).
local function release_key(KK, prefix, id, key, policy, conc, now)
  if not key or key == '' then return end
  local nxt = nil
  if policy ~= 'reject' and policy ~= 'dedupe' then
    nxt = redis.call('ZPOPMIN', KK.lane_prefix .. key, 1)[1]
  end
  if not nxt then
    if redis.call('HGET', KK.kowner, key) == id then redis.call('HDEL', KK.kowner, key) end
    if redis.call('HINCRBY', KK.kheld, key, -1) <= 0 then redis.call('HDEL', KK.kheld, key) end
    return
  end
  -- The slot passes straight to the lane's head: kheld is unchanged, a one-slot key's owner is
  -- overwritten (it was the task releasing it).
  redis.call('HINCRBY', KK.stats, 'laned', -1)
  local ntkey = prefix .. nxt
  local g = redis.call('HMGET', ntkey, 'prio', 'run_at')
  local score = int((9 - (tonumber(g[1]) or 5)) * 1e14 + redis.call('INCR', KK.seq))
  if (tonumber(conc) or 1) == 1 then redis.call('HSET', KK.kowner, key, nxt) end
  local run_at = tonumber(g[2])
  if run_at and run_at > now then
    redis.call('HSET', ntkey, 'score', score, 'state', 'scheduled', 'lane', '')
    redis.call('ZADD', KK.delayed, int(run_at), nxt)
  else
    redis.call('HSET', ntkey, 'score', score, 'state', 'queued', 'lane', '')
    redis.call('ZADD', KK.ready, score, nxt)
    wake(KK.signal)
  end
end

-- The task currently owning a one-slot key, if it is still alive. A dangling owner (its hash
-- gone behind the engine's back, or not a hash any more) is released as if it had ended, so its
-- lane moves on in order (pcall: a damaged record must not refuse every enqueue of its key).
local function live_owner(KK, key, prefix, policy, conc)
  local owner = redis.call('HGET', KK.kowner, key)
  if not owner then return nil end
  local st = redis.pcall('HGET', prefix .. owner, 'state')
  if st == 'queued' or st == 'scheduled' or st == 'running' or st == 'retrying' then return owner end
  release_key(KK, prefix, owner, key, policy, conc, now_ms())
  return redis.call('HGET', KK.kowner, key)
end

-- Admits a keyed task: returns 'slot' (it may be made ready), 'lane' (it waits for its key),
-- or 'busy', owner (reject/dedupe while another task holds the key).
local function admit(KK, prefix, id, key, policy, conc, seqno)
  if policy == 'reject' or policy == 'dedupe' then
    local owner = live_owner(KK, key, prefix, policy, conc)
    if owner then return 'busy', owner end
    redis.call('HSET', KK.kowner, key, id)
    redis.call('HSET', KK.kheld, key, 1)
    return 'slot'
  end
  if conc == 1 then live_owner(KK, key, prefix, policy, conc) end
  local held = tonumber(redis.call('HGET', KK.kheld, key) or '0')
  if held < conc then
    redis.call('HINCRBY', KK.kheld, key, 1)
    if conc == 1 then redis.call('HSET', KK.kowner, key, id) end
    return 'slot'
  end
  redis.call('ZADD', KK.lane_prefix .. key, seqno, id)
  redis.call('HINCRBY', KK.stats, 'laned', 1)
  return 'lane'
end


-- Cancels a waiting task (queued, scheduled or retrying) for good; its key's next task moves up.
-- f = HMGET of the task: state, key, kpol, kconc, lane.
local function cancel_waiting(KK, prefix, tkey, id, f, ttl, now)
  if f[5] == '1' then
    if redis.call('ZREM', KK.lane_prefix .. f[2], id) == 1 then redis.call('HINCRBY', KK.stats, 'laned', -1) end
  else
    redis.call('ZREM', KK.ready, id)
    redis.call('ZREM', KK.delayed, id)
    if f[2] then release_key(KK, prefix, id, f[2], f[3], f[4], now) end
  end
  redis.call('HSET', tkey, 'state', 'cancelled', 'finished', int(now), 'error', 'cancelled while ' .. f[1])
  redis.call('HDEL', tkey, 'lane')
  redis.call('PEXPIRE', tkey, ttl)
  redis.call('HINCRBY', KK.stats, 'cancelled', 1)
end

-- Batches (batch.rs). A child task's hash carries `batch` = its batch id, the finalize task's
-- carries `fin_of`; the batch hash is BK.prefix .. id. BK is a table: prefix, events (the queue's
-- event stream), ttl (result TTL, ms), task_prefix, ready, seq, signal, stats.
local BATCH_EVENTS_CAP = 10000

-- Appends one event with the batch's counters to the queue's capped event stream.
local function batch_event(BK, bid, bkey, event)
  local f = redis.call('HMGET', bkey, 'state', 'total_children', 'children_done', 'total_items',
    'processed_items', 'success_count', 'error_count')
  redis.call('XADD', BK.events, 'MAXLEN', '~', BATCH_EVENTS_CAP, '*', 'batch', bid, 'event', event,
    'state', f[1] or '', 'total_children', f[2] or 0, 'children_done', f[3] or 0,
    'total_items', f[4] or 0, 'processed_items', f[5] or 0, 'success_count', f[6] or 0,
    'error_count', f[7] or 0)
end

-- Ends a batch: completed (or cancelled, if it was), kept for the result TTL.
local function batch_finish(BK, bid, bkey, now)
  local state = redis.call('HGET', bkey, 'state')
  if state ~= 'cancelled' then state = 'completed' end
  redis.call('HSET', bkey, 'state', state, 'finished', int(now))
  redis.call('PEXPIRE', bkey, BK.ttl)
  batch_event(BK, bid, bkey, state)
end

-- Every child has ended: enqueue the finalize task (exactly once), or end a batch without one.
local function batch_children_done(BK, bid, bkey, now)
  local g = redis.call('HMGET', bkey, 'fin_id', 'fin_kind', 'fin_payload', 'fin_enc', 'fin_prio',
    'fin_max_retries', 'fin_soft_ms', 'fin_hard_ms', 'state')
  if not g[1] then return batch_finish(BK, bid, bkey, now) end
  if redis.call('HSETNX', bkey, 'fin_enqueued', int(now)) == 0 then return end
  local prio = tonumber(g[5]) or 5
  local score = int((9 - prio) * 1e14 + redis.call('INCR', BK.seq))
  local ftkey = BK.task_prefix .. g[1]
  redis.call('HSET', ftkey, 'kind', g[2], 'payload', g[3], 'enc', g[4] or '', 'prio', prio,
    'score', score, 'attempts', 0, 'created', int(now), 'state', 'queued', 'fin_of', bid)
  if g[6] and g[6] ~= '' then redis.call('HSET', ftkey, 'max_retries', g[6]) end
  if g[7] and g[7] ~= '' then redis.call('HSET', ftkey, 'soft_ms', g[7]) end
  if g[8] and g[8] ~= '' then redis.call('HSET', ftkey, 'hard_ms', g[8]) end
  redis.call('ZADD', BK.ready, score, g[1])
  redis.call('HINCRBY', BK.stats, 'enqueued', 1)
  wake(BK.signal)
  redis.call('HDEL', bkey, 'fin_kind', 'fin_payload', 'fin_enc', 'fin_prio', 'fin_max_retries', 'fin_soft_ms', 'fin_hard_ms')
  if g[9] == 'running' then redis.call('HSET', bkey, 'state', 'finalizing') end
  batch_event(BK, bid, bkey, 'finalizing')
end

-- A task ended for good with outcome succeeded, failed (failed or dead) or cancelled. bid is its
-- `batch` field (a child), fin_of its `fin_of` field (a finalize task). A child counts once
-- (`bdone` marks it, so a re-queued dead letter never counts twice) and the last child to end
-- finalizes the batch; a finalize task's end ends the batch with its result or error.
local function batch_task_ended(BK, tkey, bid, fin_of, outcome, result, err, now)
  if fin_of then
    local bkey = BK.prefix .. fin_of
    if redis.call('EXISTS', bkey) == 1 then
      redis.call('HSET', bkey, 'fin_state', outcome)
      if result and result ~= 'null' then redis.call('HSET', bkey, 'result', result) end
      if err then redis.call('HSET', bkey, 'fin_error', err) end
      batch_finish(BK, fin_of, bkey, now)
    end
  end
  if not bid then return end
  if redis.call('HSETNX', tkey, 'bdone', outcome) == 0 then return end
  local bkey = BK.prefix .. bid
  if redis.call('EXISTS', bkey) == 0 then return end
  redis.call('HINCRBY', bkey, 'children_' .. outcome, 1)
  local done = redis.call('HINCRBY', bkey, 'children_done', 1)
  batch_event(BK, bid, bkey, 'child_' .. outcome)
  if done >= (tonumber(redis.call('HGET', bkey, 'total_children')) or 0) then
    batch_children_done(BK, bid, bkey, now)
  end
end
