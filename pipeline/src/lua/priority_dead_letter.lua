local id = ARGV[1]
local known = redis.call('HEXISTS', KEYS[3], id) == 1 or redis.call('ZSCORE', KEYS[2], id)
bury(id, ARGV[2], ARGV[3], now_ms(), ARGV[4], ARGV[5])
if known then return 1 else return 0 end
