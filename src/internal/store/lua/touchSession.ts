import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: session hash, key base. ARGV: id, ttl ms, n, n referenced fields.
 * Resets the session's TTL and extends its reference sets to at least that TTL.
 * Returns 1, or 0 when there is no session or it is being revoked (nothing is written then).
 */
export const touchSession = LuaScript.make(
  "touchSession",
  2,
  commonLua +
    `
local hash, base = KEYS[1], KEYS[2]
local id, ttl = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', hash) == 0 then return 0 end
local refs = readList(4, tonumber(ARGV[3]))
if isBeingRevoked(base, hash, id, refs) then return 0 end
redis.call('PEXPIRE', hash, ttl)
refreshReferences(base, hash, id, refs, ttl)
return 1
`
)
