import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: session hash, key base. ARGV: id, ttl ms, controls ("1" when on),
 * absoluteMaxAge ms (-1: none), n, n referenced fields.
 * Resets the session's TTL (cut at its absolute deadline) and extends its reference sets
 * to at least that TTL. Returns 1, or 0 when there is no session, it passed its absolute
 * deadline (it is ended) or it is being revoked (nothing is written then).
 */
export const touchSession = LuaScript.make(
  "touchSession",
  2,
  commonLua +
    `
local hash, base = KEYS[1], KEYS[2]
local id, ttl = ARGV[1], tonumber(ARGV[2])
local controls, absolute = ARGV[3] == '1', tonumber(ARGV[4])
if redis.call('EXISTS', hash) == 0 then return 0 end
local refs = readList(6, tonumber(ARGV[5]))
local now = controls and nowMillis() or 0
if controls and endIfPastDeadline(base, hash, id, refs, absolute, now) then return 0 end
if isBeingRevoked(base, hash, id, refs) then return 0 end
local _, setsTtl = expireSession(hash, ttl, controls, absolute, now)
refreshReferences(base, hash, id, refs, setsTtl)
return 1
`
)
