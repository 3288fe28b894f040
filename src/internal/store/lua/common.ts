// Lua shared by the standalone scripts. Reference-set keys are derived from KEYS[base]
// (`${prefix}:`, see internal/keys.ts) because a referenced value is only known once the
// script has read the hash, atomically. Values and ids never reach Lua code as code: they are ARGV.
import { keysLua } from "../../keys.js"
import { inBatchesLua } from "./inBatches.js"

export const commonLua =
  keysLua +
  inBatchesLua +
  `
local function addReference(key, id, ttl)
  local current = redis.call('PTTL', key)
  redis.call('SADD', key, id)
  -- -2: SADD just created the set, without a TTL. -1: a set v3 left without one
  -- already outlives every member: keep it so.
  if current == -2 or (current >= 0 and current < ttl) then
    redis.call('PEXPIRE', key, ttl)
  end
end

-- Re-asserts membership and TTL of every reference set of the session (self-healing).
local function refreshReferences(base, hash, id, fields, ttl)
  if #fields == 0 then return end
  local values = redis.call('HMGET', hash, unpack(fields))
  for i, field in ipairs(fields) do
    if values[i] then addReference(referenceKeyOf(base, field, values[i]), id, ttl) end
  end
end

-- Whether a revoke of a value the session holds has started and not yet reached it: the
-- id is then in that value's revoking set, and the session may not change any more.
local function isBeingRevoked(base, hash, id, fields)
  if #fields == 0 then return false end
  local values = redis.call('HMGET', hash, unpack(fields))
  for i, field in ipairs(fields) do
    if values[i] and redis.call('SISMEMBER', revokingKeyOf(base, field, values[i]), id) == 1 then return true end
  end
  return false
end

local function removeReferences(base, hash, id, fields)
  if #fields == 0 then return end
  local values = redis.call('HMGET', hash, unpack(fields))
  for i, field in ipairs(fields) do
    if values[i] then redis.call('SREM', referenceKeyOf(base, field, values[i]), id) end
  end
end

local function readList(from, count)
  local list, lookup = {}, {}
  for i = 1, count do
    list[i] = ARGV[from + i - 1]
    lookup[list[i]] = true
  end
  return list, lookup
end
`
