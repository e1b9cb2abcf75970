if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[6], ARGV[1])
  if tonumber(redis.call('HINCRBY', KEYS[5], ARGV[1], -1)) <= 0 then
    redis.call('HDEL', KEYS[5], ARGV[1])
  end
  redis.call('ZADD', KEYS[10], ARGV[2], ARGV[1])
  if ARGV[3] ~= '' then
    redis.call('HSET', KEYS[11], ARGV[1], ARGV[3])
  else
    redis.call('HDEL', KEYS[11], ARGV[1])
  end
  return 1
end
return 0
