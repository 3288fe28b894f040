// The Koa factory over a store the app built (`store`): an in-process store from
// `SessionStore.makeMemory`, with no Redis anywhere (and, once, a store an Effect
// program built over its own Redis connection). A real Koa app over HTTP: cookies,
// reads and writes, regenerate, sign-out everywhere through `mw.store`, the Effect
// `Session` through `mw.run`, what `mw.store.client` and `mw.runtime` hold, and the
// options refused beside `store`.
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import koaRedisSessionSets, { RedisClient, Session, SessionConfigError, SessionStore } from "../src/index.js"
import type { SessionStoreOptions, SessionStoreService } from "../src/index.js"
import { inject } from "vitest"
import { Browser, routeTo, serve, type Served } from "./koaUtils.js"
import { uniquePrefix } from "./utils.js"

const running: Array<{ served: Served; close: () => Promise<void> }> = []
afterAll(async () => {
  for (const t of running) {
    await t.served.close()
    await t.close()
  }
})

const memoryStore = (options: SessionStoreOptions = { references: ["user_id"] }): SessionStoreService =>
  Effect.runSync(SessionStore.makeMemory(options))

const makeApp = async (store: SessionStoreService) => {
  const app = new Koa()
  app.silent = true
  app.keys = ["a key"]
  const mw = koaRedisSessionSets(app, { store })
  app.use(mw)
  app.use(
    routeTo(
      {
        "/login": async (ctx) => {
          await ctx.session!.regenerate()
          await ctx.session!.set({ user_id: String(ctx.query["user"]) })
        },
        "/me": (ctx) => ctx.session!.get(),
        "/logout": (ctx) => ctx.session!.delete(),
        "/effect-me": (ctx) =>
          mw.run(
            ctx,
            Effect.gen(function* () {
              const session = yield* Session
              const store = yield* SessionStore
              return { session: yield* session.get(), prefix: store.prefix }
            })
          )
      },
      mw
    )
  )
  const served = await serve(app)
  running.push({ served, close: mw.close })
  return { mw, browser: () => new Browser(served.url) }
}

const thrownBy = (f: () => unknown): SessionConfigError => {
  try {
    f()
  } catch (error) {
    expect(error).toBeInstanceOf(SessionConfigError)
    return error as SessionConfigError
  }
  throw new Error("expected a SessionConfigError")
}

describe("koaRedisSessionSets(app, { store }) over a memory store", () => {
  it("serves sessions with cookies, regenerate and reads, with no Redis", async () => {
    const { browser } = await makeApp(memoryStore())
    const alice = browser()
    expect((await alice.json("/me")).body).toEqual({})
    expect(alice.lastSetCookies).toEqual([])

    await alice.request("/login?user=alice")
    const first = alice.sessionId
    expect(first).toBeDefined()
    expect((await alice.json("/me")).body).toEqual({ id: first, user_id: "alice" })

    // A second sign-in gets a new id; the old one is dead.
    const stolen = new Browser(alice.base)
    stolen.jar.set("session-id", alice.jar.get("session-id")!)
    stolen.jar.set("session-id.sig", alice.jar.get("session-id.sig")!)
    await alice.request("/login?user=alice")
    expect(alice.sessionId).not.toBe(first)
    expect((await stolen.json("/me")).body).toEqual({})
    expect((await alice.json("/me")).body).toMatchObject({ user_id: "alice" })

    await alice.request("/logout")
    expect((await alice.json("/me")).body).toEqual({})
  })

  it("runs on the store it was given: the Effect program and the middleware see the same sessions", async () => {
    const store = memoryStore()
    const { mw, browser } = await makeApp(store)
    const [phone, laptop, bob] = [browser(), browser(), browser()]
    await phone.request("/login?user=alice")
    await laptop.request("/login?user=alice")
    await bob.request("/login?user=bob")

    const ids = await Effect.runPromise(store.listByReference("user_id", "alice"))
    expect(ids.sort()).toEqual([phone.sessionId, laptop.sessionId].sort())
    expect(await mw.store.listByReference("user_id", "alice")).toEqual(expect.arrayContaining(ids))

    // Sign out everywhere, through the middleware's Promise store.
    expect(await mw.store.deleteByReference("user_id", "alice")).toBe(2)
    expect((await phone.json("/me")).body).toEqual({})
    expect((await laptop.json("/me")).body).toEqual({})
    expect((await bob.json("/me")).body).toMatchObject({ user_id: "bob" })
    expect(await Effect.runPromise(store.get(bob.sessionId!))).toMatchObject({ user_id: "bob" })
  })

  it("has no Redis client: store.client is undefined, the runtime provides SessionStore and no RedisClient", async () => {
    const store = memoryStore({ prefix: "mem", references: ["user_id"] })
    const { mw, browser } = await makeApp(store)
    expect(mw.store.client).toBeUndefined()
    expect(await mw.runtime.runPromise(Effect.serviceOption(RedisClient))).toEqual(Option.none())
    expect(await mw.runtime.runPromise(SessionStore)).toBe(store)

    const user = browser()
    await user.request("/login?user=carol")
    expect((await user.json("/effect-me")).body).toEqual({ session: { id: user.sessionId, user_id: "carol" }, prefix: "mem" })
  })

  it("has the account controls: tracked devices, the absolute deadline, revoke one, revoke the others", async () => {
    const store = memoryStore({ references: { user_id: {} }, maxAge: "1 hour", absoluteMaxAge: "8 hours", track: { userAgent: true } })
    const app = new Koa()
    app.silent = true
    app.keys = ["a key"]
    const mw = koaRedisSessionSets(app, { store })
    app.use(mw)
    app.use(
      routeTo(
        {
          "/login": async (ctx) => {
            await ctx.session!.regenerate()
            await ctx.session!.set({ user_id: "frank" })
          },
          "/sessions": (ctx) => ctx.session!.listSessions("user_id"),
          "/lifetime": async (ctx) => (await ctx.session!.lifetime()) ?? { none: true },
          "/revoke": async (ctx) => ({ revoked: await ctx.session!.revokeSession(ctx.query["handle"]) }),
          "/revoke-others": async (ctx) => ({ revoked: await ctx.session!.revokeOthers("user_id") })
        },
        mw
      )
    )
    const served = await serve(app)
    running.push({ served, close: mw.close })
    const [laptop, phone, tablet] = ["Laptop/1", "Phone/2", "Tablet/3"].map((ua) => new Browser(served.url, ua))
    for (const device of [laptop!, phone!, tablet!]) await device.request("/login")

    type Device = { handle: string; current: boolean; userAgent?: string }
    const list = async (device: Browser) => (await device.json<Array<Device>>("/sessions")).body
    const seen = await list(laptop!)
    expect(seen.map((d) => [d.userAgent, d.current]).sort()).toEqual([
      ["Laptop/1", true],
      ["Phone/2", false],
      ["Tablet/3", false]
    ])
    const before = Date.now()
    const { body: lifetime } = await laptop!.json<{ createdAt: number; absoluteExpiresAt: number }>("/lifetime")
    expect(lifetime.absoluteExpiresAt - lifetime.createdAt).toBe(8 * 3600_000)
    expect(lifetime.createdAt).toBeLessThanOrEqual(before)

    const phoneHandle = seen.find((d) => d.userAgent === "Phone/2")!.handle
    expect((await laptop!.json(`/revoke?handle=${encodeURIComponent(phoneHandle)}`)).body).toEqual({ revoked: true })
    expect((await phone!.json("/lifetime")).body).toEqual({ none: true })
    expect((await laptop!.json("/revoke-others")).body).toEqual({ revoked: 1 })
    expect((await tablet!.json("/lifetime")).body).toEqual({ none: true })
    expect((await list(laptop!)).map((d) => [d.userAgent, d.current])).toEqual([["Laptop/1", true]])
  })

  it("takes the cookie's lifetime from the store's maxAge", async () => {
    const { mw, browser } = await makeApp(memoryStore({ references: ["user_id"], maxAge: "2 hours" }))
    expect(mw.options.maxAge).toBe(7_200_000)
    expect(mw.store.maxAge).toBe(7_200_000)
    const user = browser()
    const before = Date.now()
    await user.request("/login?user=dave")
    const cookie = user.lastSetCookies.find((c) => c.name === "session-id")!
    const expires = Date.parse(cookie.attributes["expires"] as string)
    expect(expires).toBeGreaterThan(before + 7_100_000)
    expect(expires).toBeLessThan(Date.now() + 7_300_000)
  })

  it("leaves the store to whoever built it: close() does not empty it", async () => {
    const store = memoryStore()
    const app = new Koa()
    app.keys = ["a key"]
    const mw = koaRedisSessionSets(app, { store })
    await mw.store.set("an-id-that-is-long-enough-0123456789", { user_id: "erin" })
    await mw.close()
    expect(await Effect.runPromise(store.get("an-id-that-is-long-enough-0123456789"))).toMatchObject({ user_id: "erin" })
  })
})

describe("koaRedisSessionSets(app, { store }) over a store an Effect program built on Redis", () => {
  it("uses that store; store.client is its connection, which close() leaves open", async () => {
    const client = new Redis(inject("redisUrl"))
    const store = Effect.runSync(
      SessionStore.make({ prefix: uniquePrefix("koa-given"), references: ["user_id"] }).pipe(
        Effect.provideService(RedisClient, RedisClient.unsafeFromClient(client))
      )
    )
    const { mw, browser } = await makeApp(store)
    expect(mw.store.client).toBe(client)
    const user = browser()
    await user.request("/login?user=heidi")
    expect(await client.hgetall(store.getSessionKey(user.sessionId!))).toMatchObject({ user_id: "heidi" })
    await mw.close()
    expect(await client.ping()).toBe("PONG")
    await client.quit()
  })
})

describe("options refused beside store", () => {
  const app = () => Object.assign(new Koa(), { keys: ["a key"] })
  const client = new Redis({ lazyConnect: true })
  afterAll(() => client.disconnect())

  it.each([
    ["client", { client }],
    ["redis", { redis: "redis://127.0.0.1:6379" }],
    ["timeout", { timeout: "1 second" }],
    ["references", { references: ["user_id"] }],
    ["prefix", { prefix: "p" }],
    ["maxAge", { maxAge: "1 hour" }],
    ["absoluteMaxAge", { absoluteMaxAge: "8 hours" }],
    ["track", { track: { userAgent: true } }],
    ["rolling", { rolling: true }]
  ])("refuses %s with a SessionConfigError naming it", (option, extra) => {
    const error = thrownBy(() => koaRedisSessionSets(app(), { store: memoryStore(), ...extra } as never))
    expect(error.option).toBe(option)
    expect(error.message).toContain(option)
  })

  it("refuses a store that is not a built store, saying how to build one", () => {
    const layer = thrownBy(() => koaRedisSessionSets(app(), { store: SessionStore.layerMemory() } as never))
    expect([layer.option, layer.message]).toEqual(["store", expect.stringMatching(/Layer.*SessionStore\.makeMemory/)])
    const effect = thrownBy(() => koaRedisSessionSets(app(), { store: SessionStore.makeMemory() } as never))
    expect([effect.option, effect.message]).toEqual(["store", expect.stringMatching(/Effect.*Effect\.runSync/)])
    const other = thrownBy(() => koaRedisSessionSets(app(), { store: { get: () => undefined } } as never))
    expect(other.option).toBe("store")
  })

  it("still checks the factory's own options beside store", () => {
    expect(thrownBy(() => koaRedisSessionSets(app(), { store: memoryStore(), key: "a;b" })).option).toBe("key")
    expect(thrownBy(() => koaRedisSessionSets(new Koa(), { store: memoryStore() })).option).toBe("signed")
  })
})
