import * as LuaScript from "../../../LuaScript.js"
import { clusterCommonLua } from "./clusterCommon.js"

/**
 * Cluster mode: the one atomic step of a write, on the session hash's slot.
 * KEYS: session hash, its tombstone, its left record. ARGV: op ("set" | "unset" | "touch" | "create"), id, ttl ms,
 * "1" to write only an existing session, cap (absolute unix ms the hash may not
 * outlive, -1 = none), n, n referenced fields, n expectations, then field/value
 * pairs ("set", "create") or field names ("unset").
 *
 * An expectation is "?" (not checked: the write sets or removes that field),
 * "-" (must be absent) or "=" followed by the value the field must hold. They
 * make the step a compare-and-set on the referenced fields the write keeps, whose
 * sets the caller has extended beforehand; the cap is the earliest expiry among
 * the sets of every value the session holds after the write, so the hash never
 * outlives a set it is a member of.
 *
 * Returns { status, absolute expiry of the hash (-2 = no session), the n old
 * values, the n new values } (nil = field absent). status: 1 written; 0 nothing
 * written, no session and "only existing" asked; -1 nothing written, an
 * expectation failed (old = current values); -2 nothing written, "create" found
 * the key taken; -3 nothing written, the session would be created but its id was
 * revoked (tombstone, see clusterRevokeSession).
 *
 * A referenced field that held a value and no longer does (changed or removed) is
 * recorded in the left record (`${field}:${old}` → now); the record expires with the hash.
 */
export const clusterWriteSession = LuaScript.make(
  "clusterWriteSession",
  3,
  clusterCommonLua +
    `
local hash, tombstone, left = KEYS[1], KEYS[2], KEYS[3]
local op, id, ttl, onlyExisting, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1', tonumber(ARGV[5])
local nrefs = tonumber(ARGV[6])
local refs = readList(7, nrefs)
local expected = readList(7 + nrefs, nrefs)
local first = 7 + 2 * nrefs
local now = nowMillis()
local exists = redis.call('EXISTS', hash) == 1
local old = referencedValues(hash, refs)
local function reply(status, at, new)
  return append(append({ status, at }, old), new)
end
local absent = {}
for i = 1, nrefs do absent[i] = false end
if op == 'create' and exists then return reply(-2, expireTime(hash, now, 1), old) end
if onlyExisting and not exists then return reply(0, -2, absent) end
if not exists and redis.call('EXISTS', tombstone) == 1 then return reply(-3, -2, absent) end
for i = 1, nrefs do
  local e = expected[i]
  if e ~= '?' then
    local ok
    if e == '-' then ok = old[i] == false else ok = old[i] == string.sub(e, 2) end
    if not ok then
      return reply(-1, exists and expireTime(hash, now, 1) or -2, old)
    end
  end
end
if op == 'unset' then
  inBatches('HDEL', hash, first)
  redis.call('HSET', hash, 'id', id)
elseif op ~= 'touch' then
  redis.call('HSET', hash, 'id', id)
  inBatches('HSET', hash, first)
end
local at = now + ttl
if cap >= 0 and cap < at then at = cap end
redis.call('PEXPIREAT', hash, at)
local new = referencedValues(hash, refs)
if not exists then redis.call('DEL', left) end
for i = 1, nrefs do
  if old[i] and old[i] ~= new[i] then redis.call('HSET', left, refs[i] .. ':' .. old[i], now) end
end
if redis.call('EXISTS', left) == 1 then
  -- Bounded: entries older than a day are dropped once there are many.
  if redis.call('HLEN', left) > 32 then
    local entries = redis.call('HGETALL', left)
    for i = 1, #entries, 2 do
      if tonumber(entries[i + 1]) < now - 86400000 then redis.call('HDEL', left, entries[i]) end
    end
  end
  redis.call('PEXPIREAT', left, at)
end
return reply(1, at, new)
`
)
