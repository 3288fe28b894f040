import * as LuaScript from "../../../LuaScript.js"
import { clusterCommonLua } from "./clusterCommon.js"

/**
 * Cluster mode: one member of a revoking set, on the member's slot. KEYS: session hash,
 * its tombstone, its "left" record (all three share the id's hash tag). ARGV: field,
 * value, since (unix ms: the revoke's start minus a margin for clock skew and writes in
 * flight), grace ms, n, n referenced fields.
 * - The session holds field = value, or left it at `since` or later: the hash and its
 *   left record are deleted, a tombstone is written.
 * - No session: a tombstone is written (an in-flight regenerate's or first write's
 *   create of this id then fails).
 * Each tombstone lives `grace` ms. Otherwise (a member that moved away before the revoke)
 * nothing changes.
 * Returns { status, value of each referenced field }: 1 deleted (values as they were),
 * 0 no session, -1 kept.
 */
export const clusterRevokeSession = LuaScript.make(
  "clusterRevokeSession",
  3,
  clusterCommonLua +
    `
local hash, tombstone, left = KEYS[1], KEYS[2], KEYS[3]
local field, value, since, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local refs = readList(6, tonumber(ARGV[5]))
if redis.call('EXISTS', hash) == 0 then
  redis.call('DEL', left)
  redis.call('SET', tombstone, '1', 'PX', grace)
  return { 0 }
end
local leftAt = tonumber(redis.call('HGET', left, field .. ':' .. value) or '-1')
if redis.call('HGET', hash, field) ~= value and leftAt < since then return { -1 } end
local values = referencedValues(hash, refs)
redis.call('DEL', hash, left)
redis.call('SET', tombstone, '1', 'PX', grace)
return append({ 1 }, values)
`
)
