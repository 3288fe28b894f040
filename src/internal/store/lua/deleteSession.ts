import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: session hash, key base. ARGV: id, field, value, n, n referenced fields.
 * Removes the id from every reference set of the session, then the hash; when `field`
 * is not "", only if the session's `field` holds `value`.
 * Returns 1, or 0 when there was no session (or it does not hold field = value).
 */
export const deleteSession = LuaScript.make(
  "deleteSession",
  2,
  commonLua +
    `
local hash, base = KEYS[1], KEYS[2]
local id, field, value = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', hash) == 0 then return 0 end
if field ~= '' and redis.call('HGET', hash, field) ~= value then return 0 end
deleteWithReferences(base, hash, id, readList(5, tonumber(ARGV[4])))
return 1
`
)
