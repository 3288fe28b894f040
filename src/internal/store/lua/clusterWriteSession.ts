import * as LuaScript from "../../../LuaScript.js"
import { CREATED_AT_FIELD, LAST_SEEN_FIELD } from "../controls.js"
import { clusterCommonLua } from "./clusterCommon.js"

/**
 * Cluster mode: the one atomic step of a write, on the session hash's slot.
 * KEYS: session hash, its tombstone, its left record. ARGV: op ("set" | "unset" | "touch" |
 * "renew" | "create"), id, ttl ms, "1" to write only an existing session, cap (absolute unix
 * ms the hash may not outlive, -1 = none), controls ("1": the account controls are on),
 * absolute lifetime ms (-1 = none), n, n referenced fields, n expectations, then field/value
 * pairs ("set", "create") or field names ("unset").
 *
 * An expectation is "?" (not checked: the write sets or removes that field),
 * "-" (must be absent) or "=" followed by the value the field must hold. They
 * make the step a compare-and-set on the referenced fields the write keeps, whose
 * sets the caller has extended beforehand; the cap is the earliest expiry among
 * the sets of every value the session holds after the write, so the hash never
 * outlives a set it is a member of.
 *
 * With controls on: a session past its absolute deadline (creation + absolute) is dead: it
 * is deleted first and the write goes on as if there were none (only-existing writes answer
 * 0; "set" creates a fresh session, the values the dead one held recorded as left); the
 * creation time is set when missing, the last-seen time on every write, and the hash's
 * expiry is capped at the deadline too. "renew" (a rolling read) never shortens the
 * expiry: max(current, now + ttl), then capped. "create" (a regenerate's copy) carries the
 * old creation time in its pairs; past its deadline, nothing is created (-4).
 *
 * Returns { status, absolute expiry of the hash (-2 = no session), the n old values (nil =
 * field absent), the n new values, the hash's remaining TTL in ms (status 1 only) }. status: 1
 * written; 0 nothing written, no session and "only existing" asked; -1 nothing written, an
 * expectation failed (old = current values); -2 nothing written, "create" found the key
 * taken; -3 nothing written, the session would be created but its id was revoked
 * (tombstone, see clusterRevokeSession); -4 "create" of a copy past its absolute deadline.
 *
 * A referenced field that held a value and no longer does (changed or removed) is
 * recorded in the left record (`${field}:${old}` → now); the record expires with the hash.
 */
export const clusterWriteSession = LuaScript.make(
  "clusterWriteSession",
  3,
  clusterCommonLua +
    `
local CREATED, LAST_SEEN = '${CREATED_AT_FIELD}', '${LAST_SEEN_FIELD}'
local hash, tombstone, left = KEYS[1], KEYS[2], KEYS[3]
local op, id, ttl, onlyExisting, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1', tonumber(ARGV[5])
local controls, absolute = ARGV[6] == '1', tonumber(ARGV[7])
local nrefs = tonumber(ARGV[8])
local refs = readList(9, nrefs)
local expected = readList(9 + nrefs, nrefs)
local first = 9 + 2 * nrefs
local now = nowMillis()
local exists = redis.call('EXISTS', hash) == 1
local old = referencedValues(hash, refs)
local function reply(status, at, new, left)
  local r = append(append({ status, at }, old), new)
  if left then r[#r + 1] = left end
  return r
end
local absent = {}
for i = 1, nrefs do absent[i] = false end
-- A session past its absolute deadline is dead: gone before anything else happens.
local created, dead = false, false
if controls and exists then
  created = tonumber(redis.call('HGET', hash, CREATED) or '') or false
  if created and absolute >= 0 and created + absolute <= now then
    redis.call('DEL', hash)
    exists, created, dead = false, false, true
  end
end
if op == 'create' and exists then return reply(-2, expireTime(hash, now, 1), old) end
if onlyExisting and not exists then
  if dead then redis.call('DEL', left) end
  return reply(0, -2, absent)
end
if not exists and redis.call('EXISTS', tombstone) == 1 then return reply(-3, -2, absent) end
if not dead then
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
end
local deadline = -1
if controls and op == 'create' then
  -- The copy keeps the creation time it carries; a copy already past its deadline is not made.
  for i = first, #ARGV - 1, 2 do
    if ARGV[i] == CREATED then created = tonumber(ARGV[i + 1]) or false end
  end
  if created and absolute >= 0 and created + absolute <= now then
    redis.call('DEL', left)
    return reply(-4, -2, absent)
  end
end
if op == 'unset' then
  inBatches('HDEL', hash, first)
  redis.call('HSET', hash, 'id', id)
elseif op == 'set' or op == 'create' then
  redis.call('HSET', hash, 'id', id)
  inBatches('HSET', hash, first)
end
if controls then
  if not created then
    created = now
    redis.call('HSET', hash, CREATED, now)
  end
  redis.call('HSET', hash, LAST_SEEN, now)
  if absolute >= 0 then deadline = created + absolute end
end
local at = now + ttl
if op == 'renew' then
  local current = expireTime(hash, now, 0)
  if current > at then at = current end
end
if cap >= 0 and cap < at then at = cap end
if deadline >= 0 and deadline < at then at = deadline end
redis.call('PEXPIREAT', hash, at)
local new = referencedValues(hash, refs)
if not exists and not dead then redis.call('DEL', left) end
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
return reply(1, at, new, at - now)
`
)
