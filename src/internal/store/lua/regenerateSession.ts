import * as LuaScript from "../../../LuaScript.js"
import { clusterCommonLua } from "./clusterCommon.js"
import { commonLua } from "./common.js"

/**
 * KEYS: old session hash, new session hash, key base. ARGV: old id, new id,
 * ttl ms, keep ("1": keep the old hash's remaining lifetime; `ttl` then applies
 * only to a hash without one), CSRF secret field, fresh CSRF secret, controls ("1"
 * when on), absoluteMaxAge ms (-1: none), n, n referenced fields.
 *
 * Moves the data to the new id: the old id leaves every reference set and its
 * hash is gone; the new id joins the same sets, which are extended to outlive
 * the new hash. When the session holds a CSRF secret, the new hash gets the
 * fresh one instead (login rotates it); a session without one gets none.
 * With controls on, the creation time moves with the data (the absolute deadline does
 * not restart) and the TTL is cut at that deadline; a session already past it is ended.
 * Returns the new hash's TTL in ms (positive), 0 when the old session does not exist,
 * passed its absolute deadline or is being revoked, -1 when the new id is taken
 * (nothing written then).
 */
export const regenerateSession = LuaScript.make(
  "regenerateSession",
  3,
  commonLua +
    `
local oldHash, newHash, base = KEYS[1], KEYS[2], KEYS[3]
local oldId, newId, ttl, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local secretField, secret = ARGV[5], ARGV[6]
local controls, absolute = ARGV[7] == '1', tonumber(ARGV[8])
if redis.call('EXISTS', oldHash) == 0 then return 0 end
if redis.call('EXISTS', newHash) == 1 then return -1 end
local refs = readList(10, tonumber(ARGV[9]))
local now = controls and nowMillis() or 0
if controls and endIfPastDeadline(base, oldHash, oldId, refs, absolute, now) then return 0 end
-- Being revoked: no new id for it (it would escape the revoke); it is about to be deleted.
if isBeingRevoked(base, oldHash, oldId, refs) then return 0 end
if keep then
  local left = redis.call('PTTL', oldHash)
  if left > 0 then ttl = left end
end
removeReferences(base, oldHash, oldId, refs)
redis.call('RENAME', oldHash, newHash)
redis.call('HSET', newHash, 'id', newId)
if redis.call('HEXISTS', newHash, secretField) == 1 then redis.call('HSET', newHash, secretField, secret) end
local setsTtl
ttl, setsTtl = expireSession(newHash, ttl, controls, absolute, now)
refreshReferences(base, newHash, newId, refs, setsTtl)
return ttl
`
)

/**
 * Cluster mode, the first step of `regenerate`'s copy. KEYS: the old session hash, its
 * left record. Returns { absolute expiry (unix ms; -1 = no TTL, -2 = no session),
 * remaining TTL (ms, PTTL), n, the n entries of the left record (`${field}:${value}`),
 * then the hash as field/value pairs }: the data, its lifetime and the values it left
 * from one consistent read.
 */
export const clusterRegenerateSnapshot = LuaScript.make(
  "clusterRegenerateSnapshot",
  2,
  clusterCommonLua +
    `
local hash, left = KEYS[1], KEYS[2]
local now = nowMillis()
if redis.call('EXISTS', hash) == 0 then return { -2 } end
local leftValues = redis.call('HKEYS', left)
local reply = append({ expireTime(hash, now, 1), redis.call('PTTL', hash), #leftValues }, leftValues)
return append(reply, redis.call('HGETALL', hash))
`
)
