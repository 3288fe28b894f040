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

local function nowMillis()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function deleteWithReferences(base, hash, id, fields)
  removeReferences(base, hash, id, fields)
  redis.call('DEL', hash)
end

-- Account controls (controls.ts): 'absolute' is absoluteMaxAge in ms, -1 for none.
-- The session's absolute deadline (unix ms), or nil without one.
local function deadlineOf(hash, absolute)
  if absolute < 0 then return nil end
  local created = tonumber(redis.call('HGET', hash, '_created_at') or '')
  if not created then return nil end
  return created + absolute
end

-- An existing session whose absolute deadline has passed (only after absoluteMaxAge was
-- shortened: otherwise its TTL ended it) is deleted with its references. Whether it was.
local function endIfPastDeadline(base, hash, id, fields, absolute, now)
  local deadline = deadlineOf(hash, absolute)
  if deadline and deadline <= now then
    deleteWithReferences(base, hash, id, fields)
    return true
  end
  return false
end

-- Gives a written session its TTL. With controls: records the times of the write (the
-- creation time only when missing: v3 sessions count as created when first written), and
-- sets the expiry as a time (PEXPIREAT now + ttl, cut at the absolute deadline), so the key
-- never outlives the deadline by the time the script takes between TIME and here. Answers
-- the hash's TTL and the TTL its sets must cover: a second more, because a relative PEXPIRE
-- may count from the script's start (Redis 7.2 freezes a script's time), before TIME.
-- 'seenWritten': the caller's HSET wrote last-seen already.
local function expireSession(hash, ttl, controls, absolute, now, seenWritten)
  if not controls then
    redis.call('PEXPIRE', hash, ttl)
    return ttl, ttl
  end
  redis.call('HSETNX', hash, '_created_at', now)
  if not seenWritten then redis.call('HSET', hash, '_last_seen_at', now) end
  local at = now + ttl
  local deadline = deadlineOf(hash, absolute)
  if deadline and deadline < at then at = deadline end
  redis.call('PEXPIREAT', hash, at)
  return at - now, at - now + 1000
end

-- Byte order of two ids (Lua's < follows the server's locale).
local function bytesBefore(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- A value may hold at most 'max' live sessions: with 'id' joining it, deletes the least
-- recently active others (ties: the byte-smaller id) and prunes dead members. How many it deleted.
local function enforceCap(base, fields, field, value, id, max)
  local key = referenceKeyOf(base, field, value)
  local others = {}
  for _, member in ipairs(redis.call('SMEMBERS', key)) do
    if member ~= id then
      local state = redis.call('HMGET', sessionKeyOf(base, member), field, '_last_seen_at', '_created_at')
      if state[1] == value then
        others[#others + 1] = { member, tonumber(state[2] or state[3] or '0') or 0 }
      else
        redis.call('SREM', key, member)
      end
    end
  end
  local excess = #others + 1 - max
  if excess <= 0 then return 0 end
  table.sort(others, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return bytesBefore(a[1], b[1])
  end)
  for i = 1, excess do
    deleteWithReferences(base, sessionKeyOf(base, others[i][1]), others[i][1], fields)
  end
  return excess
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
