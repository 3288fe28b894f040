import * as LuaScript from "../../../LuaScript.js"

/** Shared with the cluster's freeze: the move itself. Returns 1 when there was anything to move, else 0. */
export const freezeLua = `
local function freeze(set, revoking)
  if redis.call('EXISTS', set) == 0 then return 0 end
  if redis.call('EXISTS', revoking) == 0 then
    redis.call('RENAME', set, revoking)
    return 1
  end
  local setTtl, revokingTtl = redis.call('PTTL', set), redis.call('PTTL', revoking)
  redis.call('SUNIONSTORE', revoking, revoking, set)
  redis.call('DEL', set)
  if setTtl >= 0 and revokingTtl >= 0 then redis.call('PEXPIRE', revoking, math.max(setTtl, revokingTtl)) end
  return 1
end
`

/**
 * The first step of `deleteByReference` on a single server. KEYS: the reference set,
 * its revoking set. Moves the members of the reference set into the revoking set, in
 * one step: from then on they are the sessions being revoked (the write scripts refuse
 * to change them, see `isBeingRevoked`), and a fresh login for the value starts a new
 * reference set. A revoking set left by a concurrent (or interrupted) revoke is merged
 * into, keeping the longer TTL (none when either has none, like a set v3 made).
 * Returns 1 when there was anything to move, else 0.
 */
export const freezeReference = LuaScript.make(
  "freezeReference",
  2,
  freezeLua +
    `
return freeze(KEYS[1], KEYS[2])
`
)
