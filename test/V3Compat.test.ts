// Sessions written by koa-redis-session-sets 3.0.0, served by this library on the same
// Redis, prefix and app.keys. The v3 side is modelled command for command (test/v3Store.ts)
// and its cookies are set by the real `cookies` package, the way v3 set them.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import { inject } from "vitest"
import koaRedisSessionSets from "../src/index.js"
import type { SessionMiddleware } from "../src/index.js"
import { SessionStore } from "../src/SessionStore.js"
import { Browser, serve, type Served } from "./koaUtils.js"
import { RedisTest, uniquePrefix } from "./utils.js"
import { V3_MAX_AGE, v3IdWithPunctuation, v3Store, v3Tokens, type V3Store } from "./v3Store.js"

const KEYS = ["v3 key", "older key"]

let client: Redis
const cleanups: Array<() => Promise<unknown>> = []
beforeAll(() => {
  client = new Redis(inject("redisUrl"))
})
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  await client.quit()
})

interface Deployment {
  readonly v3: V3Store
  readonly mw: SessionMiddleware
  /** A browser holding the cookie v3 sent for `id`. */
  readonly v3Browser: (id: string) => Promise<Browser>
  /** A browser of the v4 app. */
  readonly browser: () => Browser
}

/**
 * One Redis and one set of keys shared by a v3 deployment (its Store commands and its
 * cookies) and a v4 app with the same options. Routes of the v4 app: /me, /set, /csrf, /verify.
 */
const deployment = async (signed: boolean): Promise<Deployment> => {
  const prefix = uniquePrefix("v3")
  const v3 = v3Store(client, prefix, ["user_id"])

  // What v3's Session._setCookie did: ctx.cookies.set(key, id, options) with v3's options.
  const v3App = new Koa()
  v3App.keys = KEYS
  v3App.use((ctx) => {
    ctx.cookies.set("session-id", ctx.query["id"] as string, { signed, httpOnly: true, overwrite: true, maxAge: V3_MAX_AGE })
    ctx.status = 204
  })
  const v3Served = await serve(v3App)

  const app = new Koa()
  app.silent = true
  app.keys = KEYS
  const mw = koaRedisSessionSets(app, { client, prefix, signed, references: { user_id: {} } })
  app.use(mw)
  app.use(async (ctx) => {
    if (ctx.path === "/me") ctx.body = await ctx.session.get()
    else if (ctx.path === "/set") {
      await ctx.session.set(ctx.query as Record<string, string>)
      ctx.status = 204
    } else if (ctx.path === "/csrf") ctx.body = { token: await ctx.session.createCSRFToken() }
    else if (ctx.path === "/verify") ctx.body = { valid: await ctx.session.verifyCSRFToken(ctx.query["token"]) }
  })
  const served: Served = await serve(app)
  cleanups.push(
    () => v3Served.close(),
    () => served.close(),
    () => mw.close(),
    async () => {
      const keys = await client.keys(`${prefix}:*`)
      if (keys.length > 0) await client.del(...keys)
    }
  )
  return {
    v3,
    mw,
    v3Browser: async (id) => {
      const browser = new Browser(v3Served.url)
      await browser.request(`/?id=${encodeURIComponent(id)}`)
      expect(browser.jar.get("session-id")).toBe(id)
      expect(browser.jar.has("session-id.sig")).toBe(signed)
      return Object.assign(browser, { base: served.url }) as Browser
    },
    browser: () => new Browser(served.url)
  }
}

describe("keys", () => {
  it("are v3.0.0's, byte for byte: `<prefix>:{<id>}` and `<prefix>:<field>:{<value>}`", async () => {
    const app = new Koa()
    app.keys = KEYS
    const mw = koaRedisSessionSets(app, { client, namespace: "myapp", references: { user_id: {} } })
    try {
      expect(mw.store.getSessionKey("9gu+BNIyYm3RXA6+QTk8ZwdX")).toBe("koa-redis-session-sets:myapp:{9gu+BNIyYm3RXA6+QTk8ZwdX}")
      expect(mw.store.getReferenceKey("user_id", 55)).toBe("koa-redis-session-sets:myapp:user_id:{55}")
      expect(mw.getReferenceKey("user_id", 55)).toBe("koa-redis-session-sets:myapp:user_id:{55}")
    } finally {
      await mw.close()
    }
  })

  it.effect("a write creates exactly the keys v3 would have created, on the Effect store too", () => {
    const prefix = uniquePrefix("v3keys")
    return Effect.gen(function* () {
      const store = yield* SessionStore
      const id = "9gu+BNIyYm3RXA6+QTk8ZwdX"
      expect(store.getSessionKey(id)).toBe(`${prefix}:{${id}}`)
      yield* store.set(id, { user_id: 55, name: "a" })
      const keys = yield* Effect.promise(() => client.keys(`${prefix}:*`))
      expect(keys.sort()).toEqual([`${prefix}:user_id:{55}`, `${prefix}:{${id}}`].sort())
      expect(yield* Effect.promise(() => client.smembers(`${prefix}:user_id:{55}`))).toEqual([id])
      yield* store.delete(id)
      expect(yield* Effect.promise(() => client.keys(`${prefix}:*`))).toEqual([])
    }).pipe(Effect.provide(SessionStore.layer({ prefix, references: ["user_id"] }).pipe(Layer.provide(RedisTest))))
  })
})

describe.each([
  ["signed", true],
  ["unsigned", false]
] as const)("a v3 deployment (%s cookies)", (_label, signed) => {
  let d: Deployment
  beforeAll(async () => {
    d = await deployment(signed)
  })

  it("a v3 cookie opens its v3 session through Koa, and a write keeps its id", async () => {
    const id = v3IdWithPunctuation(d.v3)
    await d.v3.set(id, { user_id: 55, name: "v3" })
    const secret = await d.v3.createCsrfSecret(id)
    const browser = await d.v3Browser(id)

    expect((await browser.json("/me")).body).toEqual({ id, user_id: "55", name: "v3", _csrf_secret: secret })
    expect((await browser.request("/set?name=v4")).status).toBe(204)
    expect(browser.sessionId).toBe(id)
    expect(await client.hgetall(d.v3.getSessionKey(id))).toEqual({ id, user_id: "55", name: "v4", _csrf_secret: secret })
    expect(await client.smembers(d.v3.getReferenceKey("user_id", 55))).toEqual([id])
  })

  it("a CSRF token v3 issued verifies; one for another secret does not; ours verify with v3's tokens", async () => {
    const id = v3IdWithPunctuation(d.v3)
    const secret = await d.v3.createCsrfSecret(id)
    const browser = await d.v3Browser(id)
    const v3Token = v3Tokens.create(secret)
    expect((await browser.json(`/verify?token=${encodeURIComponent(v3Token)}`)).body).toEqual({ valid: true })
    const foreign = v3Tokens.create(v3Tokens.secretSync())
    expect((await browser.json(`/verify?token=${encodeURIComponent(foreign)}`)).body).toEqual({ valid: false })
    // The other way round, so a rollback to v3 keeps tokens issued meanwhile.
    const { token } = (await browser.json<{ token: string }>("/csrf")).body
    expect(v3Tokens.verify(secret, token)).toBe(true)
    expect(await client.hget(d.v3.getSessionKey(id), "_csrf_secret")).toBe(secret)
  })

  it("listByReference returns exactly the live v3 sessions and prunes the members v3 left stale", async () => {
    const user = signed ? 155 : 255
    const live = v3IdWithPunctuation(d.v3)
    const moved = v3IdWithPunctuation(d.v3)
    const deleted = v3IdWithPunctuation(d.v3)
    const expired = v3IdWithPunctuation(d.v3)
    for (const id of [live, moved, deleted]) await d.v3.set(id, { user_id: user })
    await d.v3.set(expired, { user_id: user }, 50)
    await d.v3.set(moved, { user_id: user + 1 }) // v3: no SREM from the old value's set
    await d.v3.delete(deleted) // v3: its SREMs miss, the id stays in the set
    const fresh = d.browser()
    await fresh.request(`/set?user_id=${user}`)
    await new Promise((resolve) => setTimeout(resolve, 120))
    const setKey = d.v3.getReferenceKey("user_id", user)
    expect((await client.smembers(setKey)).sort()).toEqual([live, moved, deleted, expired, fresh.sessionId!].sort())

    expect((await d.mw.store.listByReference("user_id", user)).sort()).toEqual([live, fresh.sessionId!].sort())
    expect((await client.smembers(setKey)).sort()).toEqual([live, fresh.sessionId!].sort())
    expect(await d.mw.store.listByReference("user_id", user + 1)).toEqual([moved])
  })

  it("set on a v3 session moves it between v3-named sets, through the store and through Koa", async () => {
    const user = signed ? 300 : 400
    const viaStore = v3IdWithPunctuation(d.v3)
    const viaKoa = v3IdWithPunctuation(d.v3)
    const other = v3IdWithPunctuation(d.v3)
    for (const id of [viaStore, viaKoa, other]) await d.v3.set(id, { user_id: user })
    await d.mw.store.set(viaStore, { user_id: user + 1 })
    const browser = await d.v3Browser(viaKoa)
    await browser.request(`/set?user_id=${user + 2}`)
    expect(browser.sessionId).toBe(viaKoa)

    expect(await client.smembers(d.v3.getReferenceKey("user_id", user))).toEqual([other])
    // v3 never gave its sets a TTL; a set v3 made keeps none (it outlives every member).
    expect(await client.pttl(d.v3.getReferenceKey("user_id", user))).toBe(-1)
    expect(await client.smembers(d.v3.getReferenceKey("user_id", user + 1))).toEqual([viaStore])
    expect(await client.smembers(d.v3.getReferenceKey("user_id", user + 2))).toEqual([viaKoa])
    expect(await client.hget(d.v3.getSessionKey(viaKoa), "user_id")).toBe(String(user + 2))
    // A set this library creates lives at least as long as its member.
    const [setTtl, hashTtl] = [await client.pttl(d.v3.getReferenceKey("user_id", user + 2)), await client.pttl(d.v3.getSessionKey(viaKoa))]
    expect(setTtl).toBeGreaterThanOrEqual(hashTtl - 50)
  })

  it("deleteByReference revokes the v3 sessions and leaves v3's stale members' sessions alone", async () => {
    const user = signed ? 500 : 600
    const a = v3IdWithPunctuation(d.v3)
    const b = v3IdWithPunctuation(d.v3)
    const moved = v3IdWithPunctuation(d.v3)
    const deleted = v3IdWithPunctuation(d.v3)
    for (const id of [a, b, moved, deleted]) await d.v3.set(id, { user_id: user, name: id.slice(0, 4) })
    await d.v3.set(moved, { user_id: user + 1 })
    await d.v3.delete(deleted)
    const browser = await d.v3Browser(a)
    expect((await browser.json("/me")).body).toMatchObject({ id: a, user_id: String(user) })

    expect(await d.mw.store.deleteByReference("user_id", user)).toBe(2)
    expect(await client.exists(d.v3.getSessionKey(a), d.v3.getSessionKey(b))).toBe(0)
    expect(await client.exists(d.v3.getReferenceKey("user_id", user))).toBe(0)
    expect((await browser.json("/me")).body).toEqual({})
    // The session that moved to another user before the revoke is untouched.
    expect(await client.hget(d.v3.getSessionKey(moved), "user_id")).toBe(String(user + 1))
    expect(await d.mw.store.listByReference("user_id", user + 1)).toEqual([moved])
  })
})
