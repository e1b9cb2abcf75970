local removed = 0
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[7], ARGV[i])
  if current then
    local current_generation = tonumber(string.match(current, '@(%d+)$')) or -1
    local waiting = redis.call('ZSCORE', KEYS[1], current) or redis.call('ZSCORE', KEYS[10], current)
    if current_generation < tonumber(ARGV[i + 1]) and waiting then
      forget(current)
      removed = removed + 1
    end
  end
end
return removed
