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
