local out = {}
local ready = 0
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local key = ARGV[2 + i * 4]
  local generation_text = ARGV[3 + i * 4]
  local generation = tonumber(generation_text)
  local score = ARGV[4 + i * 4]
  local payload = ARGV[5 + i * 4]
  local id
  local status = 'queued'
  local parked_score = nil
  local parked_needs = nil
  if key == '' then
    id = 'seq:' .. redis.call('INCR', KEYS[8])
  else
    id = key .. '@' .. generation_text
    local current = redis.call('HGET', KEYS[7], key)
    if current then
      local current_generation = tonumber(string.match(current, '@(%d+)$')) or -1
      if current_generation > generation then
        status = 'stale'
      elseif current == id then
        if redis.call('ZSCORE', KEYS[2], id) then
          status = 'in_flight'
        elseif redis.call('ZSCORE', KEYS[1], id) then
          status = 'replaced'
        else
          parked_score = redis.call('ZSCORE', KEYS[10], id)
          if parked_score then status = 'replaced' end
        end
      else
        parked_score = redis.call('ZSCORE', KEYS[10], current)
        if parked_score then
          parked_needs = redis.call('HGET', KEYS[11], current)
        end
        if parked_score or redis.call('ZSCORE', KEYS[1], current) then
          forget(current)
        end
        status = 'superseded'
      end
    end
  end
  if status == 'queued' or status == 'replaced' or status == 'superseded' then
    if parked_score then
      redis.call('ZADD', KEYS[10], parked_score, id)
      if parked_needs then
        redis.call('HSET', KEYS[11], id, parked_needs)
      end
    else
      redis.call('ZADD', KEYS[1], score, id)
      ready = ready + 1
    end
    redis.call('HSET', KEYS[3], id, payload)
    redis.call('HSET', KEYS[4], id, score)
    if key ~= '' then
      redis.call('HSET', KEYS[7], key, id)
    end
  end
  table.insert(out, id)
  table.insert(out, status)
end
if ready > 0 then ring(ready) end
return out
