local function dedup_key_of(id)
  return string.match(id, '^(.*)@%d+$')
end
local function forget(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[10], id)
  redis.call('HDEL', KEYS[11], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
  redis.call('HDEL', KEYS[6], id)
  local key = dedup_key_of(id)
  if key and redis.call('HGET', KEYS[7], key) == id then
    redis.call('HDEL', KEYS[7], key)
  end
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function bury(id, reason, consumer, now, fallback_payload, max_len)
  local payload = redis.call('HGET', KEYS[3], id) or fallback_payload
  local deliveries = redis.call('HGET', KEYS[5], id) or '0'
  local args = {KEYS[9]}
  if max_len ~= '' then
    table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, max_len)
  end
  for _, v in ipairs({'*', 'reason', reason, 'source_stream', KEYS[1], 'source_id', id,
      'consumer', consumer, 'deliveries', deliveries, 'dead_lettered_at_ms', tostring(now),
      'original:job', payload}) do
    table.insert(args, v)
  end
  redis.call('XADD', unpack(args))
  forget(id)
end
