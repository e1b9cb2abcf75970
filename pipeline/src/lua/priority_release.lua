if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[6], ARGV[1])
  local key = dedup_key_of(ARGV[1])
  local latest = key and redis.call('HGET', KEYS[7], key)
  if latest and latest ~= ARGV[1] then
    -- A newer job for the same key is queued: it covers this one.
    forget(ARGV[1])
    return 2
  end
  local score = redis.call('HGET', KEYS[4], ARGV[1]) or '0'
  redis.call('ZADD', KEYS[1], score, ARGV[1])
  ring(1)
  return 1
end
return 0
