-- Write a value guarded by fencing tokens: refused when the caller's token is lower than the
-- highest token this resource has accepted (its holder lost the lock to a newer one).
--
-- KEYS[1]  resource: HASH {fence = highest accepted token, value}
-- ARGV[1]  the writer's fencing token (decimal, no leading zeros)
-- ARGV[2]  value
--
-- Returns {'1', token} when written, {'0', highest accepted token} when refused. Tokens are compared
-- as decimal strings (length first), so they stay exact past 2^53.
local function less(a, b)
  if #a ~= #b then
    return #a < #b
  end
  return a < b
end
local highest = redis.call('HGET', KEYS[1], 'fence')
if highest and less(ARGV[1], highest) then
  return {'0', highest}
end
redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
return {'1', ARGV[1]}
