// Lua shared by the cluster scripts. Each cluster script takes exactly one key, so it
// runs on that key's slot; nothing here builds a key name.
import { inBatchesLua } from "./inBatches.js"

export const clusterCommonLua =
  inBatchesLua +
  `
local function nowMillis()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Absolute expiry (unix ms) of an existing key; -1 = no TTL, -2 = no key.
-- PEXPIRETIME needs Redis 7; on 6.2 it is derived from TIME + PTTL, rounded by
-- 'slack' ms (+1 for a session hash: never under-estimate how long a member lives).
local function expireTime(key, now, slack)
  local at = redis.pcall('PEXPIRETIME', key)
  if type(at) == 'number' then return at end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then return ttl end
  return now + ttl + slack
end

local function readList(from, count)
  local list = {}
  for i = 1, count do list[i] = ARGV[from + i - 1] end
  return list
end

-- HMGET of the referenced fields, with Lua false for a missing field (nil in the reply).
local function referencedValues(hash, refs)
  if #refs == 0 then return {} end
  local values = redis.call('HMGET', hash, unpack(refs))
  for i = 1, #refs do values[i] = values[i] or false end
  return values
end

local function append(target, list)
  for i = 1, #list do target[#target + 1] = list[i] end
  return target
end
`
