// (f) Raw ioredis `Cluster` in a Koa handler: the ceiling of the library on a Redis Cluster.
// Same key layout (hash `${prefix}:{${id}}`, set `${prefix}:user_id:{${value}}`: different
// slots, usually different nodes) and cookie handling as ioredis-raw.mjs.
//
// READ:  one HGETALL of the session hash named by the cookie.
// WRITE: the least a cluster write that keeps the sets right needs: no script can touch
//   the hash and a set together, and a live session must never be missing from the set of
//   a value it holds, so the id joins the new value's set before the hash holds the value
//   and leaves the old one's after. Three round trips, each waiting for the one before:
//   1. EVALSHA on the new set's slot: SADD the id, PEXPIRE the set (it outlives the hash);
//   2. EVALSHA on the hash's slot: HGET the old user_id, HSET the new one, PEXPIRE the hash;
//      returns the old value;
//   3. SREM the id from the old value's set.
//   Left out (what the library adds for concurrent writers and revoke-all): the compare-and-
//   set on kept referenced fields, the hash's expiry capped by its sets', the left record and
//   tombstone check, re-adding to the new set after the write and re-reading the hash after
//   the SREM.
// The refreshed cookie is sent on every write, as the library does.
import { Cluster } from "ioredis"
import Koa from "koa"
import { CLUSTER_NODES, MAX_AGE, nextLoginUser, nextWriteUser, PREFIX, PROFILE, serve } from "./common.mjs"
import { randomBytes } from "node:crypto"

const client = new Cluster(CLUSTER_NODES)
client.on("error", () => {})
await new Promise((resolve, reject) => {
  client.once("ready", resolve)
  client.once("error", reject)
})
const app = new Koa()
const COOKIE = "session-id"
const cookieOptions = { signed: false, httpOnly: true, sameSite: "lax", overwrite: true, path: "/", maxAge: MAX_AGE }
const readOptions = { signed: false }
const hashKey = (id) => `${PREFIX}:{${id}}`
const refKey = (value) => `${PREFIX}:user_id:{${value}}`

const JOIN_SCRIPT = `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`
const WRITE_SCRIPT = `
local old = redis.call('HGET', KEYS[1], 'user_id')
redis.call('HSET', KEYS[1], 'user_id', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return old
`
// ioredis' defineCommand: EVALSHA, and EVAL on NOSCRIPT (each master loads it on first use).
client.defineCommand("joinSet", { numberOfKeys: 1, lua: JOIN_SCRIPT })
client.defineCommand("writeUser", { numberOfKeys: 1, lua: WRITE_SCRIPT })

app.use(async (ctx) => {
  switch (ctx.path) {
    case "/read": {
      const id = ctx.cookies.get(COOKIE, readOptions)
      ctx.body = id === undefined ? {} : await client.hgetall(hashKey(id))
      return
    }
    case "/write": {
      const id = ctx.cookies.get(COOKIE, readOptions)
      if (id === undefined) ctx.throw(400, "no session")
      const value = String(nextWriteUser())
      await client.joinSet(refKey(value), id, MAX_AGE)
      const old = await client.writeUser(hashKey(id), value, MAX_AGE)
      if (old !== null && old !== value) await client.srem(refKey(old), id)
      ctx.cookies.set(COOKIE, id, cookieOptions)
      ctx.body = "ok"
      return
    }
    case "/login": {
      // The set first, then the hash (each a MULTI on its own slot).
      const id = randomBytes(18).toString("base64url")
      const userId = String(nextLoginUser())
      await client.multi().sadd(refKey(userId), id).pexpire(refKey(userId), MAX_AGE).exec()
      await client.multi().hset(hashKey(id), { id, user_id: userId, ...PROFILE }).pexpire(hashKey(id), MAX_AGE).exec()
      ctx.cookies.set(COOKIE, id, cookieOptions)
      ctx.body = "ok"
      return
    }
  }
})

serve(app.callback(), () => client.quit())
