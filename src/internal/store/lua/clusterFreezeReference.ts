import * as LuaScript from "../../../LuaScript.js"
import { clusterCommonLua } from "./clusterCommon.js"
import { freezeExceptLua } from "./freezeReference.js"

/**
 * Cluster mode, the first step of `deleteByReference`, on the value's slot. KEYS: the
 * reference set, its revoking set (same hash tag). ARGV: an id to spare ("" or absent:
 * none), which stays in the set, with the set's TTL (the set outlived it, so it still
 * does), and out of the revoking set. Moves the other members of the reference
 * set into the revoking set in one step (merging into one a concurrent or interrupted
 * revoke left, keeping the longer TTL, none when either has none), so a fresh login for
 * the value starts a new set, and a `regenerate` whose old id is in the revoking set is
 * refused (clusterAddReference). The revoking set is never shortened here.
 * Returns the server's time (unix ms): the revoke's start, t0.
 */
export const clusterFreezeReference = LuaScript.make(
  "clusterFreezeReference",
  2,
  clusterCommonLua +
    freezeExceptLua +
    `
local now = nowMillis()
freezeExcept(KEYS[1], KEYS[2], ARGV[1] or '')
return now
`
)

/**
 * Cluster mode, `deleteByReference`'s keep-alive and last step on the revoking set.
 * KEYS: the revoking set. ARGV: grace ms, "final".
 * Not final: the set lives at least `grace` more (never shortened; none stays none).
 * Final: the set lives exactly `grace` more, so in-flight regenerates can still find
 * their old id in it, and stale members are not refused for longer.
 */
export const clusterKeepRevoking = LuaScript.make(
  "clusterKeepRevoking",
  1,
  `
local revoking = KEYS[1]
local grace, final = tonumber(ARGV[1]), ARGV[2] == '1'
local ttl = redis.call('PTTL', revoking)
if ttl == -2 then return 0 end
if final or (ttl >= 0 and ttl < grace) then redis.call('PEXPIRE', revoking, grace) end
return 1
`
)
