-- Renew every lease one worker holds on one queue; report leases it lost and tasks asked to stop.
-- KEYS: leased, stop
-- ARGV: task key prefix, lease_ms, then pairs of id, token
-- Returns {lost ids...} and {stop ids...} as two arrays.
local leased, stop = KEYS[1], KEYS[2]
local prefix, lease_ms = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local lost, stopping = {}, {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', prefix .. id, 'token', 'state')
  if f[1] == token and f[2] == 'running' then
    redis.call('ZADD', leased, 'XX', int(now + lease_ms), id)
    if redis.call('SISMEMBER', stop, id) == 1 then table.insert(stopping, id) end
  else
    table.insert(lost, id)
  end
end
return {lost, stopping}
