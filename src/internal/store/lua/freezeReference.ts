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
 * Shared with the cluster's freeze: the move, sparing the member `except` ("" for none),
 * which stays in the set with the set's TTL (the set outlived it before, so it still does).
 */
export const freezeExceptLua =
  freezeLua +
  `
local function freezeExcept(set, revoking, except)
  if except == '' or redis.call('SISMEMBER', set, except) == 0 then return freeze(set, revoking) end
  local ttl = redis.call('PTTL', set)
  redis.call('SREM', set, except)
  local moved = freeze(set, revoking)
  redis.call('SADD', set, except)
  if ttl >= 0 then redis.call('PEXPIRE', set, ttl) end
  return moved
end
`

/**
 * The first step of `deleteByReference` on a single server. KEYS: the reference set,
 * its revoking set. ARGV: an id to spare ("" for none): it stays in the set, out of the
 * revoke. Moves the other members of the reference set into the revoking set, in one step: from then on they are the sessions being revoked (the write scripts refuse
 * to change them, see `isBeingRevoked`), and a fresh login for the value starts a new
 * reference set. A revoking set left by a concurrent (or interrupted) revoke is merged
 * into, keeping the longer TTL (none when either has none, like a set v3 made).
 * Returns 1 when there was anything to move, else 0.
 */
export const freezeReference = LuaScript.make(
  "freezeReference",
  2,
  freezeExceptLua +
    `
return freezeExcept(KEYS[1], KEYS[2], ARGV[1] or '')
`
)
