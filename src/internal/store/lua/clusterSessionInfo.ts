import * as LuaScript from "../../../LuaScript.js"
import { CREATED_AT_FIELD, IP_FIELD, LAST_SEEN_FIELD, USER_AGENT_FIELD } from "../controls.js"
import { clusterCommonLua } from "./clusterCommon.js"

/**
 * Cluster mode: one session's state for `lifetime`, `listSessions` and the caps, on its
 * slot. KEYS: session hash. ARGV: a field ("" for none).
 * Returns { -2, now } without a session, else { absolute expiry (unix ms; -1 = no TTL),
 * now, the field's value, creation time, last-seen time, user agent, address } (nil = absent),
 * from one consistent read. Never writes.
 */
export const clusterSessionInfo = LuaScript.make(
  "clusterSessionInfo",
  1,
  clusterCommonLua +
    `
local hash, field = KEYS[1], ARGV[1]
local now = nowMillis()
if redis.call('EXISTS', hash) == 0 then return { -2, now } end
local values = redis.call('HMGET', hash, field == '' and 'id' or field, '${CREATED_AT_FIELD}', '${LAST_SEEN_FIELD}', '${USER_AGENT_FIELD}', '${IP_FIELD}')
for i = 1, 5 do values[i] = values[i] or false end
return append({ expireTime(hash, now, 0), now }, values)
`
)
