-- Record a batch child's progress as absolute counts, fenced by its lease: the batch's counters
-- move by the difference from the child's last report (kept in the child's `bprog`), so a
-- redelivered child, or an item it does again, never counts twice.
-- KEYS: task, events
-- ARGV: token, batch key prefix, processed, succeeded, errors
-- Returns {0} for a stale lease, {-1} when the task is not a batch child, {-2} when the batch is
-- gone (expired), else {1, batch state}.
local tkey = KEYS[1]
local f = redis.call('HMGET', tkey, 'token', 'state', 'batch', 'bprog')
if f[1] ~= ARGV[1] or f[2] ~= 'running' then return {0} end
if not f[3] then return {-1} end
local bid = f[3]
local bkey = ARGV[2] .. bid
if redis.call('EXISTS', bkey) == 0 then return {-2} end
local old = {0, 0, 0}
if f[4] then
  local i = 1
  for v in string.gmatch(f[4], '[^,]+') do old[i] = tonumber(v) or 0; i = i + 1 end
end
local new = {tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])}
local fields = {'processed_items', 'success_count', 'error_count'}
for i = 1, 3 do
  if new[i] ~= old[i] then redis.call('HINCRBY', bkey, fields[i], new[i] - old[i]) end
end
redis.call('HSET', tkey, 'bprog', int(new[1]) .. ',' .. int(new[2]) .. ',' .. int(new[3]))
batch_event({events = KEYS[2]}, bid, bkey, 'progress')
return {1, redis.call('HGET', bkey, 'state')}
