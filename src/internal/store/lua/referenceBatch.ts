import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: the set, key base. ARGV: field, value, mode ("list" | "info" | "delete"),
 * absoluteMaxAge ms (-1: none; "info" deletes a session past its deadline, with its
 * references, instead of listing it), n, n referenced fields, then a batch of ids read
 * from the set by SSCAN.
 * "list" (the reference set): returns the live ids, and removes from the set an id
 * whose session is gone or no longer holds field = value. "info": the same, answering
 * { now (unix ms), then per live session: id, creation, last seen, PTTL, user agent,
 * address } ("" for a field the session lacks). "delete" (the revoking set,
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
local field, value, mode, absolute = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local nrefs = tonumber(ARGV[5])
local refs = readList(6, nrefs)
local live, deleted = {}, 0
local now = 0
if mode == 'info' then
  now = nowMillis()
  live[1] = now
end
for i = 6 + nrefs, #ARGV do
  local id = ARGV[i]
  local hash = sessionKeyOf(base, id)
  if redis.call('HGET', hash, field) == value then
    if mode == 'delete' then
      deleteWithReferences(base, hash, id, refs)
      redis.call('SREM', set, id)
      deleted = deleted + 1
    elseif mode == 'info' and endIfPastDeadline(base, hash, id, refs, absolute, now) then
      redis.call('SREM', set, id)
    elseif mode == 'info' then
      local info = redis.call('HMGET', hash, '_created_at', '_last_seen_at', '_user_agent', '_ip')
      live[#live + 1] = id
      live[#live + 1] = info[1] or ''
      live[#live + 1] = info[2] or ''
      live[#live + 1] = redis.call('PTTL', hash)
      live[#live + 1] = info[3] or ''
      live[#live + 1] = info[4] or ''
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
