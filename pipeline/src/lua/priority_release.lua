if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[6], ARGV[1])
  local score = redis.call('HGET', KEYS[4], ARGV[1]) or '0'
  redis.call('ZADD', KEYS[1], score, ARGV[1])
  return 1
end
return 0
