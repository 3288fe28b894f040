import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: session hash, key base. ARGV: id, ttl ms, "1" to write only an existing
 * session, n, n referenced fields, then field/value pairs.
 * Moves the id between reference sets for changed values, writes the hash, sets
 * its TTL and extends every reference set of the session to at least that TTL.
 * Returns 1 when written, 0 when "only existing" was asked and there is no session,
 * -1 when the session is being revoked (nothing written: it is about to be deleted).
 */
export const setSession = LuaScript.make(
  "setSession",
  2,
  commonLua +
    `
local hash, base = KEYS[1], KEYS[2]
local id, ttl, onlyExisting = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
if onlyExisting and redis.call('EXISTS', hash) == 0 then return 0 end
local nrefs = tonumber(ARGV[4])
local refs, isRef = readList(5, nrefs)
local first = 5 + nrefs
if isBeingRevoked(base, hash, id, refs) then return -1 end
for i = first, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if isRef[field] then
    local old = redis.call('HGET', hash, field)
    if old and old ~= value then redis.call('SREM', referenceKeyOf(base, field, old), id) end
  end
end
inBatches('HSET', hash, first, {'id', id})
redis.call('PEXPIRE', hash, ttl)
refreshReferences(base, hash, id, refs, ttl)
return 1
`
)
