local out = {}
local claim = claim_args()
local remaining = claim.max_jobs
while remaining > 0 do
  local popped = redis.call('ZPOPMAX', KEYS[1])
  if #popped == 0 then break end
  local id = popped[1]
  local count = redis.call('HINCRBY', KEYS[5], id, 1)
  if hand_out(out, claim, id, count,
      'delivered %d times without an acknowledgement (limit %d)') then
    remaining = remaining - 1
  end
end
return out
