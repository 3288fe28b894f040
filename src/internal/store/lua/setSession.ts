import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * KEYS: session hash, key base. ARGV: id, ttl ms, "1" to write only an existing
 * session, controls ("1" when on), absoluteMaxAge ms (-1: none), n, n referenced
 * fields, n caps (maxSessions per referenced field, 0: none), then field/value pairs.
 * Moves the id between reference sets for changed values, writes the hash, sets
 * its TTL and extends every reference set of the session to at least that TTL.
 * With controls on: records the times, cuts the TTL at the absolute deadline (a session
 * already past it is ended first, and only a plain write starts it afresh), and keeps each
 * capped value the id joins within its cap by deleting its least recently active sessions.
 * Returns 1 when written (or, when a cap evicted sessions, { 1, then field, value, count
 * for each value that did }), 0 when "only existing" was asked and there is no session,
 * -1 when the session is being revoked (nothing written: it is about to be deleted).
 */
export const setSession = LuaScript.make(
  "setSession",
  2,
  commonLua +
    `
local hash, base = KEYS[1], KEYS[2]
local id, ttl, onlyExisting = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local controls, absolute = ARGV[4] == '1', tonumber(ARGV[5])
local nrefs = tonumber(ARGV[6])
local refs, isRef = readList(7, nrefs)
local capOf = {}
for i = 1, nrefs do capOf[refs[i]] = tonumber(ARGV[6 + nrefs + i]) end
local first = 7 + 2 * nrefs
local now = controls and nowMillis() or 0
local exists = redis.call('EXISTS', hash) == 1
if exists and controls and endIfPastDeadline(base, hash, id, refs, absolute, now) then exists = false end
if onlyExisting and not exists then return 0 end
if isBeingRevoked(base, hash, id, refs) then return -1 end
local joined = {}
for i = first, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  if isRef[field] then
    local old = redis.call('HGET', hash, field)
    if old ~= value then
      if old then redis.call('SREM', referenceKeyOf(base, field, old), id) end
      if capOf[field] > 0 then joined[#joined + 1] = { field, value } end
    end
  end
end
-- With controls, last-seen goes in the same HSET.
inBatches('HSET', hash, first, controls and {'id', id, '_last_seen_at', now} or {'id', id})
local _, setsTtl = expireSession(hash, ttl, controls, absolute, now, true)
refreshReferences(base, hash, id, refs, setsTtl)
if #joined == 0 then return 1 end
local reply = { 1 }
for _, pair in ipairs(joined) do
  local count = enforceCap(base, refs, pair[1], pair[2], id, capOf[pair[1]])
  if count > 0 then
    reply[#reply + 1] = pair[1]
    reply[#reply + 1] = pair[2]
    reply[#reply + 1] = count
  end
end
if #reply == 1 then return 1 end
return reply
`
)
