import * as LuaScript from "../../../LuaScript.js"
import { commonLua } from "./common.js"

/**
 * The read-side update of a Session read with account controls that observe reads
 * (controls.ts), sent only when the read (a plain HGETALL/HMGET) found it due.
 * KEYS: session hash, key base. ARGV: id, rolling ("1"), rollingInterval ms, maxAge ms,
 * absoluteMaxAge ms (-1: none), n, n referenced fields, then client field/value pairs.
 *
 * Checked again here, atomically, so a burst of reads writes once per interval: when the
 * session's last-seen time is at least an interval old and it is not being revoked, records
 * last-seen (and creation when missing) and the client fields, and with rolling extends the
 * TTL to maxAge (never shortening it, cut at the absolute deadline) and the sets with it.
 * Returns -1 when there is no session (or one past its absolute deadline, which is ended),
 * 0 when nothing was renewed, else the TTL (ms) the session was renewed to.
 */
export const renewSession = LuaScript.make(
  "renewSession",
  2,
  commonLua +
    `
local hash, base = KEYS[1], KEYS[2]
local id, rolling, interval, maxAge, absolute = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local times = redis.call('HMGET', hash, '_last_seen_at', '_created_at')
if not times[1] and redis.call('EXISTS', hash) == 0 then return -1 end
local nrefs = tonumber(ARGV[6])
local refs = readList(7, nrefs)
local now = nowMillis()
local created = tonumber(times[2] or '')
if absolute >= 0 and created and created + absolute <= now then
  deleteWithReferences(base, hash, id, refs)
  return -1
end
local seen = tonumber(times[1] or '')
if seen and now - seen < interval then return 0 end
if isBeingRevoked(base, hash, id, refs) then return 0 end
redis.call('HSET', hash, '_last_seen_at', now)
redis.call('HSETNX', hash, '_created_at', now)
for i = 7 + nrefs, #ARGV, 2 do redis.call('HSET', hash, ARGV[i], ARGV[i + 1]) end
if not rolling then return 0 end
local left = redis.call('PTTL', hash)
local at = now + maxAge
local deadline = deadlineOf(hash, absolute)
if deadline and deadline < at then at = deadline end
if left < 0 or at - now <= left then return 0 end
-- As expireSession: the expiry as a time, the sets a second more.
redis.call('PEXPIREAT', hash, at)
refreshReferences(base, hash, id, refs, at - now + 1000)
return at - now
`
)

/**
 * KEYS: session hash. ARGV: absoluteMaxAge ms (-1: none). Returns { -2 } without a
 * session (or one past its absolute deadline: as good as gone; a read never deletes it),
 * else { creation time ("" when none), absolute expiry (unix ms; -1 = no TTL) }, from one read.
 */
export const sessionLifetime = LuaScript.make(
  "sessionLifetime",
  1,
  commonLua +
    `
local hash = KEYS[1]
if redis.call('EXISTS', hash) == 0 then return { -2 } end
local now = nowMillis()
local deadline = deadlineOf(hash, tonumber(ARGV[1]))
if deadline and deadline <= now then return { -2 } end
local ttl = redis.call('PTTL', hash)
local at = -1
if ttl >= 0 then at = now + ttl end
return { redis.call('HGET', hash, '_created_at') or '', at }
`
)
