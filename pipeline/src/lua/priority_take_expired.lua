local out = {}
local claim = claim_args()
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', claim.now, 'LIMIT', 0, claim.max_jobs)
for _, id in ipairs(expired) do
  local count = redis.call('HINCRBY', KEYS[5], id, 1)
  local key = dedup_key_of(id)
  local latest = key and redis.call('HGET', KEYS[7], key)
  if latest and latest ~= id then
    forget(id)
  else
    hand_out(out, claim, id, count, 'not acknowledged after %d deliveries (limit %d)')
  end
end
return out
