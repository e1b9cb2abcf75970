local acked = 0
for _, id in ipairs(ARGV) do
  local present = redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[1], id)
    or redis.call('ZSCORE', KEYS[10], id)
  if present then
    acked = acked + 1
  end
  forget(id)
end
return acked
