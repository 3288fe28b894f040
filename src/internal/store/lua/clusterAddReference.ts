import * as LuaScript from "../../../LuaScript.js"
import { clusterCommonLua } from "./clusterCommon.js"

/**
 * Cluster mode. KEYS: one reference set, its revoking set (same hash tag).
 * ARGV: session id, mode, amount, ancestor (the old id of a regenerate, else "").
 * When the ancestor is in the revoking set (a revoke of this value has started and it
 * held the value then), nothing is added: -3. Mode "check" only does that check
 * (returns -3 or -2).
 * mode "ttl": the set must live at least `amount` ms from now (a write about to
 * give its session that lifetime). mode "at": at least until the absolute unix
 * time `amount` ms (-1: forever), the expiry of the session hash as read.
 * Adds the id and extends the set's TTL to that, never shortening it; a set that
 * has no TTL (left by v3) already outlives every member and is left so.
 * An "at" already past means the session is gone: nothing is added.
 * Returns the set's absolute expiry afterwards (-1 = none), -2 when nothing was added,
 * -3 when the ancestor is being revoked.
 */
export const clusterAddReference = LuaScript.make(
  "clusterAddReference",
  2,
  clusterCommonLua +
    `
local set, revoking = KEYS[1], KEYS[2]
local id, mode, amount, ancestor = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if ancestor ~= '' and redis.call('SISMEMBER', revoking, ancestor) == 1 then return -3 end
if mode == 'check' then return -2 end
local now = nowMillis()
local at = amount
if mode == 'ttl' then at = now + amount end
if at >= 0 and at <= now then return -2 end
local existed = redis.call('EXISTS', set) == 1
redis.call('SADD', set, id)
if not existed then
  if at < 0 then return -1 end
  redis.call('PEXPIREAT', set, at)
  return at
end
local current = expireTime(set, now, 0)
if current < 0 then return -1 end
if at < 0 then
  redis.call('PERSIST', set)
  return -1
end
if current < at then
  redis.call('PEXPIREAT', set, at)
  return at
end
return current
`
)
