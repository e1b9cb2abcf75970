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
-- What the claim scripts share: their ARGV (1 max jobs, 2 visibility ms, 3 max deliveries,
-- 4 consumer, 5 dead-letter max len) and the server's time, read once per call.
local function claim_args()
  local now = now_ms()
  return {
    max_jobs = tonumber(ARGV[1]),
    now = now,
    deadline = now + tonumber(ARGV[2]),
    max_deliveries = tonumber(ARGV[3]),
    consumer = ARGV[4],
    max_len = ARGV[5],
  }
end
-- Hands job `id`, now delivered `count` times, to `claim.consumer` until `claim.deadline`, or
-- buries it once `count` is over the delivery limit, the reason being `over_limit` formatted
-- with the deliveries before this one and the limit. Appends the reply entry (id, payload or '',
-- deliveries, state) to `out`; returns true when the consumer got a payload.
local function hand_out(out, claim, id, count, over_limit)
  if count > claim.max_deliveries then
    bury(id, string.format(over_limit, count - 1, claim.max_deliveries), claim.consumer,
      claim.now, '', claim.max_len)
    table.insert(out, id); table.insert(out, ''); table.insert(out, count); table.insert(out, 'dead')
    return false
  end
  local payload = redis.call('HGET', KEYS[3], id)
  redis.call('ZADD', KEYS[2], claim.deadline, id)
  redis.call('HSET', KEYS[6], id, claim.consumer)
  if payload then
    table.insert(out, id); table.insert(out, payload); table.insert(out, count)
    table.insert(out, 'ok')
    return true
  end
  table.insert(out, id); table.insert(out, ''); table.insert(out, count)
  table.insert(out, 'missing')
  return false
end
-- Tells idle consumers that `n` jobs became ready (see the doorbell in priority.rs); the
-- stream keeps only its last entries.
local function ring(n)
  redis.call('XADD', KEYS[12], 'MAXLEN', '~', '100', '*', 'ready', tostring(n))
end
