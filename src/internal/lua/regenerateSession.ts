import * as LuaScript from "../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: old session hash, new session hash, key base. ARGV: old id, new id,
 * ttl ms, n, n referenced fields.
 * Moves the data to the new id: the old id leaves every reference set and its
 * hash is gone; the new id joins the same sets. Returns 1, 0 when the old
 * session does not exist, -1 when the new id is taken (nothing written then).
 */
export const regenerateSession = LuaScript.make(
  "regenerateSession",
  3,
  commonLua +
    `
local oldHash, newHash, base = KEYS[1], KEYS[2], KEYS[3]
local oldId, newId, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', oldHash) == 0 then return 0 end
if redis.call('EXISTS', newHash) == 1 then return -1 end
local refs = readList(5, tonumber(ARGV[4]))
removeReferences(base, oldHash, oldId, refs)
redis.call('RENAME', oldHash, newHash)
redis.call('HSET', newHash, 'id', newId)
redis.call('PEXPIRE', newHash, ttl)
refreshReferences(base, newHash, newId, refs, ttl)
return 1
`
)
