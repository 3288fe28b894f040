import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import Koa from "koa"
import { Redis } from "ioredis"
import { inject } from "vitest"
import koaRedisSessionSets, { ClientClosedRequest, InvalidSessionData, RedisError, Session, SessionConfigError, SessionStore } from "../src/index.js"
import type { KoaRedisSessionSetsOptions, SessionMiddleware } from "../src/index.js"
import { commandsDuring } from "./commands.js"
import { Browser, routeTo, serve, type Served } from "./koaUtils.js"
import { uniquePrefix } from "./utils.js"

let client: Redis
/** A second connection, for counting commands only (test/commands.ts). */
let stats: Redis

beforeAll(() => {
  client = new Redis(inject("redisUrl"))
  stats = new Redis(inject("redisUrl"))
})
afterAll(async () => {
  await client.quit()
  await stats.quit()
})

interface TestApp {
  readonly app: Koa
  readonly mw: SessionMiddleware
  readonly served: Served
  readonly browser: () => Browser
  readonly prefix: string
}

const running: Array<TestApp> = []
afterAll(async () => {
  for (const t of running) {
    await t.served.close()
    await t.mw.close()
  }
})

/** A real Koa app over HTTP; `routes` maps a path to a handler. */
const makeApp = async (
  routes: Record<string, (ctx: Koa.Context, mw: SessionMiddleware) => Promise<unknown> | unknown>,
  options: Partial<KoaRedisSessionSetsOptions> = {},
  keys: Array<string> | undefined = ["key one", "key two"]
): Promise<TestApp> => {
  const app = new Koa()
  app.silent = true
  if (keys) app.keys = keys
  const prefix = uniquePrefix("koa")
  const mw = koaRedisSessionSets(app, { client, prefix, references: { user_id: {} }, ...options })
  app.use(mw)
  app.use(routeTo(routes, mw))
  const served = await serve(app)
  const t = { app, mw, served, browser: () => new Browser(served.url), prefix }
  running.push(t)
  return t
}

const jsonBody = async (ctx: Koa.Context): Promise<Record<string, unknown>> => {
  let raw = ""
  for await (const chunk of ctx.req) raw += chunk
  return raw === "" ? {} : (JSON.parse(raw) as Record<string, unknown>)
}

const post = (body: unknown): RequestInit => ({ method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } })

const keysUnder = (prefix: string) => client.keys(`${prefix}:*`)

describe("v3 README examples", () => {
  it("the first example: get, set, get again", async () => {
    const seen: Array<unknown> = []
    const t = await makeApp({
      "/": async (ctx) => {
        let session = await ctx.session.get()
        seen.push(session)
        await ctx.session.set({ user_id: 1 })
        session = await ctx.session.get()
        seen.push(session)
        ctx.status = 204
      }
    })
    const browser = t.browser()
    expect((await browser.request("/")).status).toBe(204)
    const id = browser.sessionId!
    expect(seen).toEqual([{}, { id, user_id: "1" }])
    expect(await client.smembers(t.mw.getReferenceKey("user_id", 1))).toEqual([id])
  })

  it("the revoke-all example (SMEMBERS + Store.delete) works as written", async () => {
    const t = await makeApp({ "/login": (ctx) => ctx.session.set({ user_id: 1 }) })
    const browsers = [t.browser(), t.browser(), t.browser()]
    for (const b of browsers) await b.request("/login")
    const Session = t.mw

    const key = Session.getReferenceKey("user_id", 1)
    const session_ids = await client.smembers(key)
    await Promise.all(session_ids.map((session_id) => Session.store.delete(session_id)))

    expect(session_ids.sort()).toEqual(browsers.map((b) => b.sessionId!).sort())
    for (const id of session_ids) expect(await Session.store.get(id)).toEqual({})
    expect(await client.exists(key)).toBe(0)
  })

  it("deleteByReference is the one-call revoke-all", async () => {
    const t = await makeApp({
      "/login": async (ctx) => ctx.session.set({ user_id: (await jsonBody(ctx))["user"] as number }),
      "/me": (ctx) => ctx.session.get()
    })
    const mine = [t.browser(), t.browser()]
    const theirs = t.browser()
    for (const b of mine) await b.request("/login", post({ user: 1 }))
    await theirs.request("/login", post({ user: 2 }))
    expect(await t.mw.store.deleteByReference("user_id", 1)).toBe(2)
    for (const b of mine) expect((await b.json("/me")).body).toEqual({})
    expect((await theirs.json("/me")).body).toMatchObject({ user_id: "2" })
  })
})

describe("ctx.session", () => {
  it("getKey, get(fields), set, unset, touch, delete", async () => {
    const t = await makeApp({
      "/key": (ctx) => ({ key: ctx.session.getKey() }),
      "/set": async (ctx) => ctx.session.set((await jsonBody(ctx)) as Record<string, string>),
      "/get": (ctx) => ctx.session.get(),
      "/fields": (ctx) => ctx.session.get(["name", "missing"]),
      "/unset": (ctx) => ctx.session.unset(["name"]),
      "/touch": (ctx) => ctx.session.touch(60_000),
      "/delete": (ctx) => ctx.session.delete()
    })
    const b = t.browser()
    await b.request("/set", post({ name: "ann", user_id: 3 }))
    const id = b.sessionId!
    expect(id).toMatch(/^[A-Za-z0-9_-]{24}$/)
    expect((await b.json("/key")).body).toEqual({ key: `${t.prefix}:{${id}}` })
    expect((await b.json("/get")).body).toEqual({ id, name: "ann", user_id: "3" })
    expect((await b.json("/fields")).body).toEqual({ id, name: "ann" })
    await b.request("/unset")
    expect(b.lastSetCookies.map((c) => c.name)).toContain("session-id")
    expect((await b.json("/get")).body).toEqual({ id, user_id: "3" })
    // touch(60 s): the cookie and the hash both expire in 60 s. `cookies` 0.9 sends maxAge as an
    // `expires` date (never a `max-age` attribute), in whole seconds: up to 1 s early.
    const touchedFrom = Date.now()
    await b.request("/touch")
    const touchedBy = Date.now()
    const expires = Date.parse(String(b.lastSetCookies.find((c) => c.name === "session-id")?.attributes["expires"]))
    expect(expires).toBeGreaterThanOrEqual(touchedFrom + 60_000 - 1000)
    expect(expires).toBeLessThanOrEqual(touchedBy + 60_000)
    const ttl = await client.pttl(`${t.prefix}:{${id}}`)
    expect(ttl).toBeLessThanOrEqual(60_000)
    expect(ttl).toBeGreaterThanOrEqual(60_000 - (Date.now() - touchedFrom) - 5)
    expect(Math.abs(Date.now() + ttl - expires)).toBeLessThan(2000)
    await b.request("/delete")
    expect(b.sessionId).toBeUndefined()
    expect(await keysUnder(t.prefix)).toEqual([])
    // After delete the next get starts a fresh, empty session.
    expect((await b.json("/get")).body).toEqual({})
  })

  it("an anonymous get() writes no key and sends no cookie", async () => {
    const t = await makeApp({ "/get": (ctx) => ctx.session.get(), "/fields": (ctx) => ctx.session.get(["_csrf_secret"]) })
    const b = t.browser()
    expect((await b.json("/get")).body).toEqual({})
    expect((await b.json("/fields")).body).toEqual({})
    expect(b.lastSetCookies).toEqual([])
    expect(b.jar.size).toBe(0)
    expect(await keysUnder(t.prefix)).toEqual([])
  })

  it("requests that never touch the session cost no Redis command and no Set-Cookie", async () => {
    const t = await makeApp({ "/login": (ctx) => ctx.session.set({ user_id: 4 }), "/plain": () => ({ ok: true }) })
    const b = t.browser()
    await b.request("/login")
    const { total } = await commandsDuring(stats, async () => {
      for (let i = 0; i < 5; i++) {
        await b.request("/plain")
        expect(b.lastSetCookies).toEqual([])
      }
    })
    expect(total).toBe(0)
  })

  it("each operation on an existing session is exactly one Redis round trip", async () => {
    const t = await makeApp({
      "/login": (ctx) => ctx.session.set({ user_id: 5 }),
      "/get": (ctx) => ctx.session.get(),
      "/fields": (ctx) => ctx.session.get(["user_id"]),
      "/set": (ctx) => ctx.session.set({ user_id: 6 }),
      "/unset": (ctx) => ctx.session.unset(["user_id"]),
      "/touch": (ctx) => ctx.session.touch(),
      "/delete": (ctx) => ctx.session.delete()
    })
    const b = t.browser()
    await b.request("/login")
    // Load the scripts first; the NOSCRIPT fallback is tested in SessionStore.test.ts.
    await b.request("/set")
    await b.request("/unset")
    await b.request("/touch")
    // What clients sent (MONITOR): the commands a script runs inside it are not round trips.
    for (const path of ["/get", "/fields", "/set", "/unset", "/touch", "/delete"]) {
      const { sent } = await commandsDuring(stats, async () => expect((await b.request(path)).status, path).toBeLessThan(300), { sent: true })
      expect(sent.map((args) => args.join(" ")), path).toHaveLength(1)
    }
  })

  it("an id that fails the id rule gets a fresh session and never reaches Redis", async () => {
    const t = await makeApp({ "/get": (ctx) => ctx.session.get(), "/set": (ctx) => ctx.session.set({ a: 1 }) }, { signed: false })
    const b = t.browser()
    b.jar.set("session-id", "bad}{*:id")
    const { result: read, total } = await commandsDuring(stats, () => b.json("/get"))
    expect(read.body).toEqual({})
    expect(total).toBe(0)
    await b.request("/set")
    expect(b.sessionId).toMatch(/^[A-Za-z0-9_-]{24}$/)
    expect(await keysUnder(t.prefix)).toEqual([`${t.prefix}:{${b.sessionId}}`])
  })

  it("regenerate() moves the data to a new id and kills the old one", async () => {
    const t = await makeApp({
      "/login": (ctx) => ctx.session.set({ user_id: 7, cart: "3 items" }),
      "/regenerate": (ctx) => ctx.session.regenerate(),
      "/get": (ctx) => ctx.session.get()
    })
    const b = t.browser()
    await b.request("/login")
    const oldId = b.sessionId!
    await b.request("/regenerate")
    const newId = b.sessionId!
    expect(newId).not.toBe(oldId)
    expect((await b.json("/get")).body).toEqual({ id: newId, user_id: "7", cart: "3 items" })
    expect(await client.smembers(t.mw.getReferenceKey("user_id", 7))).toEqual([newId])
    // Someone still holding the old id has nothing (an unsigned app over the same keys lets us plant it).
    const unsigned = await makeApp({ "/get": (ctx) => ctx.session.get() }, { signed: false, prefix: t.prefix })
    const s2 = unsigned.browser()
    s2.jar.set("session-id", oldId)
    expect((await s2.json("/get")).body).toEqual({})
  })

  it("a revoked cookie that calls set() gets a new id; the revoked id stays gone", async () => {
    const t = await makeApp({
      "/login": (ctx) => ctx.session.set({ user_id: 8 }),
      "/set": (ctx) => ctx.session.set({ theme: "dark" }),
      "/get": (ctx) => ctx.session.get()
    })
    const b = t.browser()
    await b.request("/login")
    const revoked = b.sessionId!
    expect(await t.mw.store.deleteByReference("user_id", 8)).toBe(1)
    await b.request("/set")
    expect(b.sessionId).not.toBe(revoked)
    expect(await client.exists(`${t.prefix}:{${revoked}}`)).toBe(0)
    expect((await b.json("/get")).body).toEqual({ id: b.sessionId, theme: "dark" })
    expect(await client.exists(t.mw.getReferenceKey("user_id", 8))).toBe(0)
  })

  it("rejects with the typed errors; bad input answers 400", async () => {
    let caught: unknown
    const t = await makeApp({
      "/bad": async (ctx) => {
        try {
          await ctx.session.set({ nested: { a: 1 } } as never)
        } catch (error) {
          caught = error
          throw error
        }
      },
      "/fields": (ctx) => ctx.session.get("user_id" as never)
    })
    const b = t.browser()
    expect((await b.request("/bad")).status).toBe(400)
    expect(caught).toBeInstanceOf(InvalidSessionData)
    expect(caught).toBeInstanceOf(Error)
    expect((caught as InvalidSessionData)._tag).toBe("InvalidSessionData")
    expect((await b.request("/fields")).status).toBe(400)
    expect(await keysUnder(t.prefix)).toEqual([])
  })
})

describe("cookies", () => {
  it("defaults: signed, httpOnly, SameSite=Lax, path /, expires follows the session", async () => {
    const t = await makeApp({ "/set": (ctx) => ctx.session.set({ a: 1 }), "/short": (ctx) => ctx.session.set({ a: 2 }, "1h") })
    const b = t.browser()
    await b.request("/set")
    const cookie = b.lastSetCookies.find((c) => c.name === "session-id")!
    const sig = b.lastSetCookies.find((c) => c.name === "session-id.sig")
    expect(sig).toBeDefined()
    expect(cookie.attributes["httponly"]).toBe(true)
    expect(cookie.attributes["samesite"]).toBe("lax")
    expect(cookie.attributes["path"]).toBe("/")
    expect(cookie.attributes["secure"]).toBeUndefined()
    const expires = Date.parse(cookie.attributes["expires"] as string)
    expect(expires - Date.now()).toBeGreaterThan(27 * 86_400_000)
    await b.request("/short")
    const short = Date.parse(b.lastSetCookies.find((c) => c.name === "session-id")!.attributes["expires"] as string)
    expect(short - Date.now()).toBeLessThanOrEqual(3_600_000 + 1000)
    expect(short - Date.now()).toBeGreaterThan(3_500_000)
  })

  it("a signed write sends exactly the headers the cookies package would, at any maxAge and after app.keys rotate", async () => {
    // The library signs with remembered signatures; `cookies` computes them. Same bytes (bar expires).
    const withoutExpires = (headers: Array<string>) => headers.map((h) => h.replace(/; expires=[^;]+/, ""))
    const t = await makeApp({
      "/set": (ctx) => ctx.session.set({ a: 1 }),
      "/short": (ctx) => ctx.session.set({ a: 2 }, "1h"),
      "/reference": (ctx) => {
        const maxAge = Number(ctx.query["maxAge"])
        ctx.cookies.set("session-id", String(ctx.query["id"]), { signed: true, httpOnly: true, sameSite: "lax", overwrite: true, path: "/", maxAge })
        return "ok"
      }
    })
    const b = t.browser()
    const compare = async (path: string, maxAge: number) => {
      const ours = withoutExpires((await b.request(path)).headers.getSetCookie())
      const id = b.sessionId!
      const theirs = withoutExpires((await t.browser().request(`/reference?id=${id}&maxAge=${maxAge}`)).headers.getSetCookie())
      expect(ours).toHaveLength(2)
      expect(ours).toEqual(theirs)
    }
    await compare("/set", 28 * 86_400_000)
    await compare("/set", 28 * 86_400_000) // a remembered signature this time
    await compare("/short", 3_600_000)
    t.app.keys = ["a new key", "key one"]
    await compare("/set", 28 * 86_400_000)
    expect((await b.json("/set")).status).toBe(204)
  })

  it("key, httpOnly, sameSite, domain, path, signed: false are honoured", async () => {
    const t = await makeApp(
      { "/set": (ctx) => ctx.session.set({ a: 1 }) },
      { key: "sid", httpOnly: false, sameSite: "strict", domain: "127.0.0.1", path: "/", signed: false }
    )
    const b = t.browser()
    await b.request("/set")
    expect(b.lastSetCookies.map((c) => c.name)).toEqual(["sid"])
    const cookie = b.lastSetCookies[0]!
    expect(cookie.attributes["httponly"]).toBeUndefined()
    expect(cookie.attributes["samesite"]).toBe("strict")
    expect(cookie.attributes["domain"]).toBe("127.0.0.1")
  })

  it("secure: true sends a Secure cookie behind a TLS proxy", async () => {
    const t = await makeApp({ "/set": (ctx) => ctx.session.set({ a: 1 }) }, { secure: true })
    t.app.proxy = true
    const b = t.browser()
    await b.request("/set", { headers: { "x-forwarded-proto": "https" } })
    expect(b.lastSetCookies.find((c) => c.name === "session-id")!.attributes["secure"]).toBe(true)
  })

  it("a forged or missing signature gets a fresh session", async () => {
    const t = await makeApp({ "/login": (ctx) => ctx.session.set({ user_id: 9 }), "/get": (ctx) => ctx.session.get() })
    const victim = t.browser()
    await victim.request("/login")
    const forger = t.browser()
    forger.jar.set("session-id", victim.sessionId!)
    forger.jar.set("session-id.sig", "forged-signature")
    expect((await forger.json("/get")).body).toEqual({})
    forger.jar.delete("session-id.sig")
    expect((await forger.json("/get")).body).toEqual({})
    // The real signature still works.
    expect((await victim.json("/get")).body).toMatchObject({ user_id: "9" })
  })

  it("signed cookies without app.keys throw at once", () => {
    const app = new Koa()
    expect(() => koaRedisSessionSets(app, { client })).toThrow(SessionConfigError)
    expect(() => koaRedisSessionSets(app, { client })).toThrow(/app\.keys/)
    expect(() => koaRedisSessionSets(app, { client, signed: false })).not.toThrow()
  })

  it("bad store options throw at once", () => {
    const app = new Koa()
    app.keys = ["k"]
    expect(() => koaRedisSessionSets(app, { client, maxAge: "forever" })).toThrow(SessionConfigError)
    expect(() => koaRedisSessionSets(app, { client, references: ["id"] })).toThrow(SessionConfigError)
  })
})

describe("CSRF", () => {
  it("v3's get → createCSRFToken(session) → verifyCSRFToken(session, token) pattern", async () => {
    const t = await makeApp({
      "/form": async (ctx) => {
        const session = await ctx.session.get()
        const token = await ctx.session.createCSRFToken(session)
        return { token, recorded: typeof session["_csrf_secret"] === "string", valid: await ctx.session.verifyCSRFToken(session, token) }
      },
      "/submit": async (ctx) => ({ valid: await ctx.session.verifyCSRFToken(String((await jsonBody(ctx))["token"] ?? "")) }),
      "/submit-raw": async (ctx) => ({ valid: await ctx.session.verifyCSRFToken((await jsonBody(ctx))["token"]) })
    })
    const b = t.browser()
    const form = await b.json<{ token: string; recorded: boolean; valid: boolean }>("/form")
    expect(form.body.recorded).toBe(true)
    expect(form.body.valid).toBe(true)
    expect(await client.hget(`${t.prefix}:{${b.sessionId}}`, "_csrf_secret")).toBeTruthy()
    expect((await b.json("/submit", post({ token: form.body.token }))).body).toEqual({ valid: true })
    for (const bad of ["", "garbage", form.body.token.slice(0, -2), `${form.body.token}x`]) {
      expect((await b.json("/submit", post({ token: bad }))).body, bad).toEqual({ valid: false })
    }
    for (const bad of [null, 42, { a: 1 }, ["x"]]) {
      expect((await b.json("/submit-raw", post({ token: bad }))).body).toEqual({ valid: false })
    }
    // A token from another session is not valid here.
    const other = t.browser()
    const otherForm = await other.json<{ token: string }>("/form")
    expect((await b.json("/submit", post({ token: otherForm.body.token }))).body).toEqual({ valid: false })
  })

  it("verifyCSRFToken(token, undefined) takes a string first argument as the token, as v3 did", async () => {
    const t = await makeApp({
      "/token": (ctx) => ctx.session.createCSRFToken(),
      // A JavaScript wrapper that always passes two arguments.
      "/verify": async (ctx) => {
        const verify = ctx.session.verifyCSRFToken.bind(ctx.session) as (a: unknown, b: unknown) => Promise<boolean>
        return { valid: await verify(String(ctx.query["t"]), undefined) }
      }
    })
    const b = t.browser()
    const token = (await b.request("/token").then((r) => r.text())).trim()
    expect((await b.json(`/verify?t=${encodeURIComponent(token)}`)).body).toEqual({ valid: true })
    expect((await b.json(`/verify?t=${encodeURIComponent(`${token}x`)}`)).body).toEqual({ valid: false })
  })

  it("a session without a secret verifies nothing and throws nothing", async () => {
    const t = await makeApp({ "/verify": async (ctx) => ({ valid: await ctx.session.verifyCSRFToken("abc-def") }) })
    const b = t.browser()
    expect((await b.json("/verify")).body).toEqual({ valid: false })
    expect(await keysUnder(t.prefix)).toEqual([])
  })

  it("createCSRFToken reuses the stored secret", async () => {
    const t = await makeApp({ "/token": (ctx) => ctx.session.createCSRFToken(), "/verify": async (ctx) => ({ valid: await ctx.session.verifyCSRFToken(ctx.query["t"]) }) })
    const b = t.browser()
    const first = await (await b.request("/token")).text()
    const secret = await client.hget(`${t.prefix}:{${b.sessionId}}`, "_csrf_secret")
    const second = await (await b.request("/token")).text()
    expect(await client.hget(`${t.prefix}:{${b.sessionId}}`, "_csrf_secret")).toBe(secret)
    for (const token of [first, second]) expect((await b.json(`/verify?t=${encodeURIComponent(token)}`)).body).toEqual({ valid: true })
  })
})

describe("Effect inside Koa", () => {
  it("SessionMiddleware.run provides Session and SessionStore; typed failures keep their tags", async () => {
    const t = await makeApp({
      "/login": (ctx, mw) =>
        mw.run(
          ctx,
          Effect.gen(function* () {
            const session = yield* Session
            yield* session.set({ user_id: 10 })
            const store = yield* SessionStore
            return { sessions: (yield* store.listByReference("user_id", 10)).length }
          })
        ),
      "/fail": async (ctx, mw) => {
        const error = await mw.run(ctx, Effect.flatMap(Session, (s) => s.set({ id: "x" }))).catch((e: unknown) => e)
        return { tag: (error as { _tag: string })._tag, isError: error instanceof InvalidSessionData }
      },
      "/get": (ctx) => ctx.session.get()
    })
    const b = t.browser()
    expect((await b.json("/login")).body).toEqual({ sessions: 1 })
    expect((await b.json("/get")).body).toEqual({ id: b.sessionId, user_id: "10" })
    expect((await b.json("/fail")).body).toEqual({ tag: "InvalidSessionData", isError: true })
  })
})

describe("Redis down", () => {
  it("maps to 503 without leaking internals; the promise rejects with RedisError", async () => {
    const dead = new Redis({ port: 1, host: "127.0.0.1", lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
    dead.on("error", () => {})
    let caught: unknown
    const t = await makeApp(
      {
        "/get": async (ctx) => {
          try {
            return await ctx.session.set({ a: 1 })
          } catch (error) {
            caught = error
            throw error
          }
        }
      },
      { client: dead as never }
    )
    const response = await t.browser().request("/get")
    expect(response.status).toBe(503)
    const body = await response.text()
    expect(body).toBe("Service Unavailable")
    expect(caught).toBeInstanceOf(RedisError)
    expect((caught as RedisError).operation).toBe("SessionStore.set")
    dead.disconnect()
  })
})

describe("SessionMiddleware.store.regenerate", () => {
  it("keeps the remaining lifetime, takes an explicit maxAge, and rotates the CSRF secret", async () => {
    const t = await makeApp({})
    const store = t.mw.store
    const id = store.createSessionId()
    await store.set(id, { user_id: 5, _csrf_secret: "old-secret" }, 600_000)
    const kept = (await store.regenerate(id))!
    expect(await client.pttl(store.getSessionKey(kept))).toBeGreaterThan(590_000)
    expect(await client.pttl(store.getSessionKey(kept))).toBeLessThanOrEqual(600_000)
    const secret = await client.hget(store.getSessionKey(kept), "_csrf_secret")
    expect(secret).not.toBe("old-secret")
    expect(secret).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    const hour = (await store.regenerate(kept, undefined, "1h"))!
    expect(await client.pttl(store.getSessionKey(hour))).toBeGreaterThan(3_590_000)
    expect(await store.listByReference("user_id", 5)).toEqual([hour])
  })
})

describe("factory options", () => {
  it("SessionMiddleware.options is the object given, filled in as v3 did (maxAge in ms), and store.byteLength is v3's", async () => {
    const given: KoaRedisSessionSetsOptions = { client, prefix: uniquePrefix("koa"), maxAge: "2h", httpOnly: false, byteLength: 20 }
    const app = new Koa()
    app.keys = ["k"]
    const mw = koaRedisSessionSets(app, given)
    try {
      expect(mw.options).toBe(given)
      expect(mw.options).toMatchObject({ key: "session-id", signed: true, httpOnly: false, overwrite: true, maxAge: 7_200_000 })
      expect(mw.store.maxAge).toBe(7_200_000)
      expect(mw.store.byteLength).toBe(20)
    } finally {
      await mw.close()
    }
  })

  it("namespace, byteLength and maxAge reach the keys, ids, TTLs and cookies", async () => {
    const namespace = `ns${Math.random().toString(36).slice(2, 8)}`
    const t = await makeApp({ "/set": (ctx) => ctx.session.set({ user_id: 11 }) }, { prefix: undefined, namespace, byteLength: 32, maxAge: "2h" })
    const b = t.browser()
    await b.request("/set")
    const id = b.sessionId!
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const key = `koa-redis-session-sets:${namespace}:{${id}}`
    expect(await client.hget(key, "user_id")).toBe("11")
    const ttl = await client.pttl(key)
    expect(ttl).toBeGreaterThan(7_100_000)
    expect(ttl).toBeLessThanOrEqual(7_200_000)
    const expires = Date.parse(b.lastSetCookies.find((c) => c.name === "session-id")!.attributes["expires"] as string)
    expect(Math.abs(expires - Date.now() - 7_200_000)).toBeLessThan(5_000)
    await client.del(key, `koa-redis-session-sets:${namespace}:user_id:{11}`)
  })

  it("path and overwrite are passed to the cookie", async () => {
    const twice = async (ctx: Koa.Context) => {
      await ctx.session.set({ a: 1 })
      await ctx.session.set({ a: 2 })
    }
    const overwriting = await makeApp({ "/app/twice": twice }, { path: "/app", signed: false })
    const b = overwriting.browser()
    await b.request("/app/twice")
    expect(b.lastSetCookies.filter((c) => c.name === "session-id")).toHaveLength(1)
    expect(b.lastSetCookies[0]!.attributes["path"]).toBe("/app")
    const appending = await makeApp({ "/twice": twice }, { overwrite: false, signed: false })
    const c = appending.browser()
    await c.request("/twice")
    expect(c.lastSetCookies.filter((x) => x.name === "session-id")).toHaveLength(2)
  })

  it("createSession(ctx) works without the middleware", async () => {
    const app = new Koa()
    app.keys = ["k"]
    const mw = koaRedisSessionSets(app, { client, prefix: uniquePrefix("create") })
    app.use(async (ctx) => {
      const session = mw.createSession(ctx)
      await session.set({ a: 1 })
      ctx.body = await session.get()
    })
    const served = await serve(app)
    try {
      const b = new Browser(served.url)
      expect((await b.json("/")).body).toEqual({ id: b.sessionId, a: "1" })
    } finally {
      await served.close()
      await mw.close()
    }
  })

  it("close() never quits the app's client; a connection from `redis` is the library's to quit", async () => {
    const app = new Koa()
    app.keys = ["k"]
    const borrowed = koaRedisSessionSets(app, { client })
    await borrowed.close()
    expect(client.status).toBe("ready")
    const owned = koaRedisSessionSets(app, { redis: inject("redisUrl"), prefix: uniquePrefix("owned") })
    await owned.store.set("abcdefghijklmnopqrst", { a: 1 })
    expect(await owned.store.get("abcdefghijklmnopqrst")).toEqual({ id: "abcdefghijklmnopqrst", a: "1" })
    await owned.close()
    expect(owned.store.client.status).toBe("end")
  })

  it("run() after close() rejects instead of running", async () => {
    const app = new Koa()
    app.keys = ["k"]
    const mw = koaRedisSessionSets(app, { redis: inject("redisUrl"), prefix: uniquePrefix("closed") })
    const ctx = { cookies: { get: () => undefined, set: () => undefined }, req: {}, res: undefined } as unknown as Koa.Context
    expect(await mw.run(ctx, Effect.succeed("ran"))).toBe("ran")
    await mw.close()
    let ran = false
    await expect(mw.run(ctx, Effect.sync(() => (ran = true)))).rejects.toThrow(/disposed/)
    expect(ran).toBe(false)
  })

  it("run() interrupts the Effect when the client goes away", async () => {
    let interrupted = false
    let started!: () => void
    const running = new Promise<void>((resolve) => (started = resolve))
    const t = await makeApp({
      "/slow": (ctx, mw) =>
        mw.run(
          ctx,
          Effect.sync(() => started()).pipe(
            Effect.zipRight(Effect.sleep("10 seconds")),
            Effect.onInterrupt(() => Effect.sync(() => (interrupted = true)))
          )
        )
    })
    const koaErrors: Array<unknown> = []
    t.app.on("error", (error: unknown) => koaErrors.push(error))
    const controller = new AbortController()
    const request = t.browser().request("/slow", { signal: controller.signal }).catch(() => undefined)
    await running
    controller.abort()
    await request
    const deadline = Date.now() + 5000
    while ((!interrupted || koaErrors.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(interrupted).toBe(true)
    // Koa's default handler logs unless `expose`: a gone client must not print a stack trace per request.
    expect(koaErrors).toHaveLength(1)
    expect(koaErrors[0]).toBeInstanceOf(ClientClosedRequest)
    expect(koaErrors[0]).toMatchObject({ expose: true, status: 499 })
  })
})
