import * as LuaScript from "../../../LuaScript.js"
import { clusterCommonLua } from "./clusterCommon.js"

/**
 * Cluster mode. KEYS: session hash. ARGV: n, n referenced fields.
 * Returns { absolute expiry (unix ms; -2 when there is no session), value of each
 * referenced field (nil when absent) } — one consistent snapshot.
 */
export const clusterReadState = LuaScript.make(
  "clusterReadState",
  1,
  clusterCommonLua +
    `
local hash = KEYS[1]
local refs = readList(2, tonumber(ARGV[1]))
local now = nowMillis()
if redis.call('EXISTS', hash) == 0 then return { -2 } end
return append({ expireTime(hash, now, 1) }, referencedValues(hash, refs))
`
)
