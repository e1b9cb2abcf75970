local now = now_ms()
local max_deliveries = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local requeued, buried, dropped = 0, 0, 0
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[6], id)
  local count = tonumber(redis.call('HGET', KEYS[5], id) or '0')
  local key = dedup_key_of(id)
  local latest = key and redis.call('HGET', KEYS[7], key)
  if latest and latest ~= id then
    forget(id)
    dropped = dropped + 1
  elseif count >= max_deliveries then
    bury(id, 'not acknowledged after ' .. count .. ' deliveries (limit ' .. max_deliveries .. ')',
      ARGV[3], now, '', ARGV[4])
    buried = buried + 1
  else
    local score = redis.call('HGET', KEYS[4], id) or '0'
    redis.call('ZADD', KEYS[1], score, id)
    requeued = requeued + 1
  end
end
return {requeued, buried, dropped}
