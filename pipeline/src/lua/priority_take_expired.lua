local out = {}
local now = now_ms()
local deadline = now + tonumber(ARGV[2])
local max_deliveries = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(expired) do
  local count = redis.call('HINCRBY', KEYS[5], id, 1)
  local payload = redis.call('HGET', KEYS[3], id)
  local key = dedup_key_of(id)
  local latest = key and redis.call('HGET', KEYS[7], key)
  if latest and latest ~= id then
    forget(id)
  elseif count > max_deliveries then
    bury(id, 'not acknowledged after ' .. (count - 1) .. ' deliveries (limit ' ..
      max_deliveries .. ')', ARGV[4], now, '', ARGV[5])
    table.insert(out, id); table.insert(out, ''); table.insert(out, count); table.insert(out, 'dead')
  else
    redis.call('ZADD', KEYS[2], deadline, id)
    redis.call('HSET', KEYS[6], id, ARGV[4])
    if payload then
      table.insert(out, id); table.insert(out, payload); table.insert(out, count)
      table.insert(out, 'ok')
    else
      table.insert(out, id); table.insert(out, ''); table.insert(out, count)
      table.insert(out, 'missing')
    end
  end
end
return out
