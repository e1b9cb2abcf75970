local out = {}
local now = now_ms()
local deadline = now + tonumber(ARGV[2])
local max_deliveries = tonumber(ARGV[3])
local remaining = tonumber(ARGV[1])
while remaining > 0 do
  local popped = redis.call('ZPOPMAX', KEYS[1])
  if #popped == 0 then break end
  local id = popped[1]
  local count = redis.call('HINCRBY', KEYS[5], id, 1)
  local payload = redis.call('HGET', KEYS[3], id)
  if count > max_deliveries then
    bury(id, 'delivered ' .. (count - 1) .. ' times without an acknowledgement (limit ' ..
      max_deliveries .. ')', ARGV[4], now, '', ARGV[5])
    table.insert(out, id); table.insert(out, ''); table.insert(out, count); table.insert(out, 'dead')
  else
    redis.call('ZADD', KEYS[2], deadline, id)
    redis.call('HSET', KEYS[6], id, ARGV[4])
    if payload then
      table.insert(out, id); table.insert(out, payload); table.insert(out, count)
      table.insert(out, 'ok')
      remaining = remaining - 1
    else
      table.insert(out, id); table.insert(out, ''); table.insert(out, count)
      table.insert(out, 'missing')
    end
  end
end
return out
