local function parse(text)
  local t = {}
  for denom, amount in string.gmatch(text, '([^,=]+)=([^,]+)') do
    t[denom] = tonumber(amount) or 0
  end
  return t
end
local any = ARGV[2] == ''
local have = parse(ARGV[2])
local max = tonumber(ARGV[1])
local n = 0
local ids = redis.call('ZREVRANGE', KEYS[10], 0, -1)
for _, id in ipairs(ids) do
  if n >= max then break end
  local needs = redis.call('HGET', KEYS[11], id)
  local ok = any or not needs
  if not ok then
    for denom, amount in pairs(parse(needs)) do
      local held = have[denom] or 0
      if held > 0 and held * 10 >= amount then ok = true end
    end
  end
  if ok then
    redis.call('ZREM', KEYS[10], id)
    redis.call('HDEL', KEYS[11], id)
    local score = redis.call('HGET', KEYS[4], id) or '0'
    redis.call('ZADD', KEYS[1], score, id)
    n = n + 1
  end
end
if n > 0 then ring(n) end
return n
