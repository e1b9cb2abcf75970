local ids = {}
for i, denom in ipairs(ARGV) do
  local id = redis.call('HGET', KEYS[1], denom)
  if not id then
    id = redis.call('RPUSH', KEYS[2], denom) - 1
    redis.call('HSET', KEYS[1], denom, id)
  end
  ids[i] = tonumber(id)
end
return ids
