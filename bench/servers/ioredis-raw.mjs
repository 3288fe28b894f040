// (b) Raw ioredis in a Koa handler: the ceiling. Same key layout as the library
// (hash `${prefix}:{${id}}`, set `${prefix}:user_id:{${value}}`), same cookie handling
// as the library with `signed: false` (ctx.cookies, httpOnly, sameSite lax).
//
// READ:  one HGETALL of the session hash named by the cookie.
// WRITE: one round trip doing the library's work for this write, without its generality:
//   RAW_WRITE=evalsha (default, the `ioredis-raw` stack): EVALSHA of a minimal script
//     (loaded at startup) that reads the old user_id, SREMs the id from the old value's
//     set, HSETs user_id, PEXPIREs the hash, SADDs the id to the new value's set and
//     PEXPIREs it. Atomic, like the library's script.
//   RAW_WRITE=multi (the `ioredis-raw-multi` stack): MULTI / SREM old-set id / HSET hash
//     user_id new / PEXPIRE hash / SADD new-set id / PEXPIRE new-set / EXEC, in one write.
//     The old value comes from an in-process Map (id -> user_id) filled at /login and kept
//     up to date, so no read is needed; only possible in a one-process benchmark.
//     Measured because it is the obvious way to write it, and it turns out slower than one
//     EVALSHA (seven commands through ioredis instead of one).
// The refreshed cookie is sent on every write, as the library does.
import { Redis } from "ioredis"
import Koa from "koa"
import { MAX_AGE, nextWriteUser, PREFIX, RAW_WRITE_SCRIPT, rawLogin, REDIS_URL, serve } from "./common.mjs"

const client = new Redis(REDIS_URL)
client.on("error", () => {})
const app = new Koa()
const COOKIE = "session-id"
const cookieOptions = { signed: false, httpOnly: true, sameSite: "lax", overwrite: true, path: "/", maxAge: MAX_AGE }
const readOptions = { signed: false }
const hashKey = (id) => `${PREFIX}:{${id}}`
const refKey = (value) => `${PREFIX}:user_id:{${value}}`
const current = new Map()
const MODE = process.env.RAW_WRITE === "multi" ? "multi" : "evalsha"
const writeSha = await client.script("LOAD", RAW_WRITE_SCRIPT)
const BASE = `${PREFIX}:`

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
      if (MODE === "evalsha") {
        await client.evalsha(writeSha, 2, hashKey(id), BASE, id, value, MAX_AGE)
      } else {
        const old = current.get(id)
        if (old === undefined) ctx.throw(400, "no session")
        await client
          .multi()
          .srem(refKey(old), id)
          .hset(hashKey(id), "user_id", value)
          .pexpire(hashKey(id), MAX_AGE)
          .sadd(refKey(value), id)
          .pexpire(refKey(value), MAX_AGE)
          .exec()
        current.set(id, value)
      }
      ctx.cookies.set(COOKIE, id, cookieOptions)
      ctx.body = "ok"
      return
    }
    case "/login": {
      const { id, userId } = await rawLogin(client)
      current.set(id, userId)
      ctx.cookies.set(COOKIE, id, cookieOptions)
      ctx.body = "ok"
      return
    }
  }
})

serve(app.callback(), () => client.quit())
