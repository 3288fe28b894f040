import * as LuaScript from "../../../LuaScript.js"
import { clusterCommonLua } from "./clusterCommon.js"

/**
 * Cluster mode. KEYS: session hash, its left record. ARGV: field, value, n, n referenced fields.
 * Deletes the hash — when `field` is not "", only if that field holds `value`.
 * Returns { status, absolute expiry, value of each referenced field }:
 * status 1 = deleted (values as they were), 0 = no session, -1 = the session does
 * not hold field = value (kept; its current expiry and values).
 * The reference sets are the caller's to update, on their own slots.
 */
export const clusterDeleteSession = LuaScript.make(
  "clusterDeleteSession",
  2,
  clusterCommonLua +
    `
local hash, left = KEYS[1], KEYS[2]
local field, value = ARGV[1], ARGV[2]
local refs = readList(4, tonumber(ARGV[3]))
local now = nowMillis()
if redis.call('EXISTS', hash) == 0 then
  redis.call('DEL', left)
  return { 0, -2 }
end
local values = referencedValues(hash, refs)
local at = expireTime(hash, now, 1)
if field ~= '' and redis.call('HGET', hash, field) ~= value then
  return append({ -1, at }, values)
end
redis.call('DEL', hash, left)
return append({ 1, at }, values)
`
)
