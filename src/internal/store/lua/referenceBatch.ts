import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: the set, key base. ARGV: field, value, mode ("list" | "delete"),
 * n, n referenced fields, then a batch of ids read from the set by SSCAN.
 * "list" (the reference set): returns the live ids, and removes from the set an id
 * whose session is gone or no longer holds field = value. "delete" (the revoking set,
 * see freezeReference): deletes each session that holds field = value (and its other
 * references), removes every id of the batch from the set, and returns how many
 * sessions it deleted.
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
      redis.call('SREM', set, id)
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
