package redis

import goredis "github.com/redis/go-redis/v9"

// Tokens and versions travel as decimal strings: Lua numbers are doubles and
// would lose precision above 2^53. older(a, b) compares such strings
// numerically (no leading zeros).
const luaPrelude = `
local function older(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function write(key, value, ttl)
  local ver = redis.call('HINCRBY', key, 'ver', 1)
  local exp = 0
  if ttl > 0 then exp = now_ms() + ttl end
  redis.call('HSET', key, 'v', value, 'exp', exp)
  if ttl > 0 then redis.call('PEXPIREAT', key, exp) else redis.call('PERSIST', key) end
  return ver
end
`

// putScript is Put and CompareAndSwap.
//
//	KEYS[1] data key, KEYS[2] fence key (only when fenced)
//	ARGV[1] value, ARGV[2] TTL in ms, ARGV[3] fence token or '',
//	ARGV[4] expected version or '' (unconditional)
//
// Returns {0, version} | {1, seen token} (fenced) | {2, current version}.
var putScript = goredis.NewScript(luaPrelude + `
local tok = ARGV[3]
local seen = '0'
if tok ~= '' then
  seen = redis.call('GET', KEYS[2]) or '0'
  if older(tok, seen) then return {1, seen} end
end
if ARGV[4] ~= '' then
  local cur = redis.call('HGET', KEYS[1], 'ver') or '0'
  if cur ~= ARGV[4] then return {2, cur} end
end
if tok ~= '' and older(seen, tok) then redis.call('SET', KEYS[2], tok) end
return {0, write(KEYS[1], ARGV[1], tonumber(ARGV[2]))}
`)

// putManyScript is an atomic PutMany.
//
//	KEYS[1..n] data keys, KEYS[n+1] fence key (only when fenced)
//	ARGV[1] n, ARGV[2] TTL in ms, ARGV[3] fence token or '', ARGV[4..] values
//
// Returns {0, v1, ..., vn} | {1, seen token}.
var putManyScript = goredis.NewScript(luaPrelude + `
local n = tonumber(ARGV[1])
local tok = ARGV[3]
if tok ~= '' then
  local seen = redis.call('GET', KEYS[n+1]) or '0'
  if older(tok, seen) then return {1, seen} end
  if older(seen, tok) then redis.call('SET', KEYS[n+1], tok) end
end
local out = {0}
local ttl = tonumber(ARGV[2])
for i = 1, n do out[i+1] = write(KEYS[i], ARGV[i+3], ttl) end
return out
`)

// deleteScript is a fenced DeleteMany.
//
//	KEYS[1..n] data keys, KEYS[n+1] fence key; ARGV[1] n, ARGV[2] token
//
// Returns {0} | {1, seen token}.
var deleteScript = goredis.NewScript(luaPrelude + `
local n = tonumber(ARGV[1])
local tok = ARGV[2]
local seen = redis.call('GET', KEYS[n+1]) or '0'
if older(tok, seen) then return {1, seen} end
if older(seen, tok) then redis.call('SET', KEYS[n+1], tok) end
for i = 1, n do redis.call('DEL', KEYS[i]) end
return {0}
`)
