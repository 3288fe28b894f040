import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: session hash, key base. ARGV: id, n, n referenced fields.
 * Removes the id from every reference set of the session, then the hash.
 * Returns 1, or 0 when there was no session.
 */
export const deleteSession = LuaScript.make(
  "deleteSession",
  2,
  commonLua +
    `
local hash, base = KEYS[1], KEYS[2]
local id = ARGV[1]
if redis.call('EXISTS', hash) == 0 then return 0 end
local refs = readList(3, tonumber(ARGV[2]))
removeReferences(base, hash, id, refs)
redis.call('DEL', hash)
return 1
`
)
