import * as LuaScript from "../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: reference set, key base. ARGV: field, value, mode ("list" | "delete"),
 * n, n referenced fields, then a batch of ids read from the set by SSCAN.
 * An id whose session is gone, or no longer holds field = value, is removed
 * from the set. "list" returns the live ids; "delete" deletes those sessions
 * (and their other references) and returns how many it deleted.
 */
export const referenceBatch = LuaScript.make(
  "referenceBatch",
  2,
  commonLua +
    `
local set, base = KEYS[1], KEYS[2]
local field, value, mode = ARGV[1], ARGV[2], ARGV[3]
local nrefs = tonumber(ARGV[4])
local refs = readList(5, nrefs)
local live, deleted = {}, 0
for i = 5 + nrefs, #ARGV do
  local id = ARGV[i]
  local hash = sessionKeyOf(base, id)
  if redis.call('HGET', hash, field) == value then
    if mode == 'delete' then
      removeReferences(base, hash, id, refs)
      redis.call('DEL', hash)
      deleted = deleted + 1
    else
      live[#live + 1] = id
    end
  else
    redis.call('SREM', set, id)
  end
end
if mode == 'delete' then return deleted end
return live
`
)
