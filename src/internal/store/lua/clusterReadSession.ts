import * as LuaScript from "../../../LuaScript.js"
import { CREATED_AT_FIELD, LAST_SEEN_FIELD } from "../controls.js"
import { clusterCommonLua } from "./clusterCommon.js"

/**
 * Cluster mode: a Session's read with account controls that observe reads, on the hash's
 * slot. KEYS: session hash, its left record. ARGV: rolling interval ms, absolute lifetime ms
 * (-1 = none), n, n referenced fields, m, m tracked client values (field/value pairs), then
 * the fields to read (none: all of them).
 *
 * - No session: { 0, now }.
 * - Past its absolute deadline: the hash (and left record) are deleted: { -4, now, the n
 *   referenced values it held } (the caller takes the id out of those sets, on their slots).
 * - Else { 1, now, due, the data as read (HGETALL pairs, or the values of the fields) }.
 *   `due` (1) when the last-seen time is missing or at least an interval old: the read
 *   then records last-seen = now, the creation time when missing and the client values
 *   (nothing that touches a reference set or the TTL); the caller renews the TTL (rolling)
 *   with the write protocol, so the sets keep outliving the hash.
 */
export const clusterReadSession = LuaScript.make(
  "clusterReadSession",
  2,
  clusterCommonLua +
    `
local CREATED, LAST_SEEN = '${CREATED_AT_FIELD}', '${LAST_SEEN_FIELD}'
local hash, left = KEYS[1], KEYS[2]
local interval, absolute = tonumber(ARGV[1]), tonumber(ARGV[2])
local nrefs = tonumber(ARGV[3])
local refs = readList(4, nrefs)
local nclient = tonumber(ARGV[4 + nrefs])
local clientFrom = 5 + nrefs
local fieldsFrom = clientFrom + nclient
local now = nowMillis()
if redis.call('EXISTS', hash) == 0 then return { 0, now } end
local times = redis.call('HMGET', hash, CREATED, LAST_SEEN)
local created, lastSeen = tonumber(times[1] or ''), tonumber(times[2] or '')
if created and absolute >= 0 and created + absolute <= now then
  local values = referencedValues(hash, refs)
  redis.call('DEL', hash, left)
  return append({ -4, now }, values)
end
local data
if #ARGV >= fieldsFrom then
  data = redis.call('HMGET', hash, unpack(readList(fieldsFrom, #ARGV - fieldsFrom + 1)))
  for i = 1, #ARGV - fieldsFrom + 1 do data[i] = data[i] or false end
else
  data = redis.call('HGETALL', hash)
end
local due = lastSeen == nil or now - lastSeen >= interval
if due then
  redis.call('HSET', hash, LAST_SEEN, now)
  if not created then redis.call('HSET', hash, CREATED, now) end
  if nclient > 0 then redis.call('HSET', hash, unpack(readList(clientFrom, nclient))) end
end
return append({ 1, now, due and 1 or 0 }, data)
`
)
