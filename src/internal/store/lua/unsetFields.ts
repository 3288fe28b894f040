import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: session hash, key base. ARGV: id, ttl ms, controls ("1" when on),
 * absoluteMaxAge ms (-1: none), n, n referenced fields, then the fields to remove.
 * Removes the id from the sets of removed referenced values, deletes the fields, resets
 * the TTL (cut at the absolute deadline) and extends the remaining sets.
 * Returns 1, or 0 when there is no session, it passed its absolute deadline (it is ended)
 * or it is being revoked (nothing is written then).
 */
export const unsetFields = LuaScript.make(
  "unsetFields",
  2,
  commonLua +
    `
local hash, base = KEYS[1], KEYS[2]
local id, ttl = ARGV[1], tonumber(ARGV[2])
local controls, absolute = ARGV[3] == '1', tonumber(ARGV[4])
if redis.call('EXISTS', hash) == 0 then return 0 end
local nrefs = tonumber(ARGV[5])
local refs, isRef = readList(6, nrefs)
local first = 6 + nrefs
local now = controls and nowMillis() or 0
if controls and endIfPastDeadline(base, hash, id, refs, absolute, now) then return 0 end
if isBeingRevoked(base, hash, id, refs) then return 0 end
for i = first, #ARGV do
  local field = ARGV[i]
  if isRef[field] then
    local old = redis.call('HGET', hash, field)
    if old then redis.call('SREM', referenceKeyOf(base, field, old), id) end
  end
end
inBatches('HDEL', hash, first)
redis.call('HSET', hash, 'id', id)
local _, setsTtl = expireSession(hash, ttl, controls, absolute, now)
refreshReferences(base, hash, id, refs, setsTtl)
return 1
`
)
