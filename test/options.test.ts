// Options are checked when they are given: the factory throws a SessionConfigError naming
// the option, SessionStore.make/layer fail with it. Nothing waits for the first request.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer } from "effect"
import Koa from "koa"
import Keygrip from "keygrip"
import { Redis } from "ioredis"
import { inject } from "vitest"
import koaRedisSessionSets, { SessionConfigError, SessionStore } from "../src/index.js"
import type { SessionStoreOptions } from "../src/index.js"
import { Browser, serve } from "./koaUtils.js"
import { pttls, Raw, storeLayer, uniquePrefix } from "./utils.js"

// Never connects: the factory only needs a client to hold.
let idle: Redis
let client: Redis
beforeAll(() => {
  idle = new Redis({ lazyConnect: true })
  client = new Redis(inject("redisUrl"))
})
afterAll(async () => {
  idle.disconnect()
  await client.quit()
})

const keyedApp = (keys: unknown = ["a secret"]): Koa => {
  const app = new Koa()
  ;(app as { keys: unknown }).keys = keys
  return app
}

/** What the factory throws for `options` (it must throw, synchronously, a SessionConfigError). */
const factoryError = (options: Record<string, unknown>, app: Koa = keyedApp()): SessionConfigError => {
  let thrown: unknown
  try {
    const mw = koaRedisSessionSets(app, { client: idle, ...options } as never)
    void mw.close()
  } catch (error) {
    thrown = error
  }
  expect(thrown, JSON.stringify(Object.keys(options))).toBeInstanceOf(SessionConfigError)
  return thrown as SessionConfigError
}

/** The factory accepts `options` (the middleware is closed again). */
const accepted = async (options: Record<string, unknown>, app: Koa = keyedApp()): Promise<void> => {
  const mw = koaRedisSessionSets(app, options as never)
  await mw.close()
}

/** What building `SessionStore.layer(options)` fails with. */
const layerError = (options: Record<string, unknown>) =>
  Effect.flip(Effect.scoped(Layer.build(storeLayer(options as SessionStoreOptions)))) as Effect.Effect<SessionConfigError, never>

describe("app.keys", () => {
  it("an empty app.keys is refused while signed is on", async () => {
    const error = factoryError({}, keyedApp([]))
    expect(error.option).toBe("signed")
    expect(error.message).toMatch(/app\.keys is empty/)
    expect(error.message).toMatch(/signed: false/)
    expect(factoryError({}, keyedApp([""])).message).toMatch(/app\.keys\[0\] must be a non-empty string or Buffer/)
    expect(factoryError({}, keyedApp("a secret")).option).toBe("signed")
    // Still fine: signed off, or real keys (an array, Buffers, a Keygrip).
    await accepted({ client: idle, signed: false }, keyedApp([]))
    await accepted({ client: idle }, keyedApp([Buffer.from("k")]))
    await accepted({ client: idle }, keyedApp(new Keygrip(["k"])))
  })
})

describe("cookie options", () => {
  it("sameSite must be one the cookies package accepts", async () => {
    for (const sameSite of ["lux", "", "none please", 1, null, {}]) {
      const error = factoryError({ sameSite })
      expect(error.option).toBe("sameSite")
      expect(error.message).toMatch(/"strict", "lax", "none"/)
    }
    for (const sameSite of ["strict", "Lax", "NONE", true, false]) await accepted({ client: idle, sameSite })
  })

  it("key, booleans, path, domain and priority are type-checked", () => {
    const cases: ReadonlyArray<readonly [Record<string, unknown>, string, RegExp]> = [
      [{ key: "" }, "key", /non-empty string/],
      [{ key: 5 }, "key", /non-empty string/],
      [{ key: "a=b" }, "key", /not a valid cookie name/],
      [{ key: "a;b" }, "key", /not a valid cookie name/],
      [{ key: "a\nb" }, "key", /not a valid cookie name/],
      [{ signed: "false" }, "signed", /true or false, got "false"/],
      [{ httpOnly: 0 }, "httpOnly", /true or false/],
      [{ overwrite: "yes" }, "overwrite", /true or false/],
      [{ secure: "true" }, "secure", /true or false/],
      [{ partitioned: 1 }, "partitioned", /true or false/],
      [{ path: 5 }, "path", /URL path/],
      [{ path: "/a;b" }, "path", /URL path/],
      [{ domain: 5 }, "domain", /domain name/],
      [{ domain: "exa mple.com" }, "domain", /domain name/],
      [{ priority: "urgent" }, "priority", /"low", "medium" or "high"/],
      [{ timeout: "soon" }, "timeout", /duration/],
      [{ timeout: 0 }, "timeout", /positive/],
      [{ timeout: Duration.days(30) }, "timeout", /timer limit/],
      [{ saltLength: 0 }, "saltLength", /positive integer/],
      [{ secretLength: "18" }, "secretLength", /positive integer/]
    ]
    for (const [options, option, message] of cases) {
      const error = factoryError(options)
      expect(error.option, JSON.stringify(options)).toBe(option)
      expect(error.message, JSON.stringify(options)).toMatch(message)
    }
  })

  it("v3's cookie pass-through options: priority and partitioned reach the cookie, expires/maxage/secureProxy are refused with a reason", async () => {
    const refused = [
      [{ expires: new Date(Date.now() + 60_000) }, "expires", /follows maxAge/],
      [{ maxage: 60_000 }, "maxage", /use maxAge/],
      [{ secureProxy: true }, "secureProxy", /use secure/]
    ] as const
    for (const [options, option, message] of refused) {
      const error = factoryError(options)
      expect(error.option).toBe(option)
      expect(error.message).toMatch(message)
      expect(error.message).not.toMatch(/unknown option/)
    }

    const app = keyedApp()
    app.silent = true
    const mw = koaRedisSessionSets(app, { client, prefix: uniquePrefix("options"), priority: "high", partitioned: true })
    app.use(mw)
    app.use(async (ctx) => {
      await ctx.session.set({ a: 1 })
      ctx.status = 204
    })
    const served = await serve(app)
    try {
      const browser = new Browser(served.url)
      await browser.request("/")
      const cookie = browser.lastSetCookies.find((c) => c.name === "session-id")!
      expect(cookie.attributes["priority"]).toBe("high")
      expect(cookie.attributes["partitioned"]).toBe(true)
      expect(browser.lastSetCookies.find((c) => c.name === "session-id.sig")!.attributes["priority"]).toBe("high")
    } finally {
      await served.close()
      await mw.close()
    }
  })
})

describe("connection options", () => {
  it("redis must be a redis:// or rediss:// URL or ioredis options", async () => {
    for (const redis of ["not a url", "http://127.0.0.1:6379", "localhost:6379", 6379, ["redis://x"], null]) {
      const error = factoryError({ client: undefined, redis })
      expect(error.option, String(redis)).toBe("redis")
      expect(error.message).toMatch(/redis:\/\/ or rediss:\/\//)
    }
    const client = factoryError({ client: undefined, redis: idle })
    expect(client.option).toBe("redis")
    expect(client.message).toMatch(/pass a client the app owns as `client`/)
    // A library-owned connection from a redis:// URL is still fine.
    await accepted({ redis: inject("redisUrl"), prefix: uniquePrefix("options") })
  })

  it("an invalid option opens no connection, whatever it is the option of (redis given)", async () => {
    const connected = async () => Number(/connected_clients:(\d+)/.exec(await client.info("clients"))![1])
    const before = await connected()
    for (const bad of [{ maxAge: 0 }, { references: ["a:b"] }, { sameSite: "lux" }, { referenecs: ["user_id"] }]) {
      expect(factoryError({ client: undefined, redis: inject("redisUrl"), ...bad }).option).toBeDefined()
    }
    // ioredis connects on the next ticks: give a leaked client the time to show up.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await connected()).toBe(before)
  })

  it("client and redis together are refused", () => {
    const error = factoryError({ client: idle, redis: inject("redisUrl") })
    expect(error.option).toBe("redis")
    expect(error.message).toMatch(/either `client`.*or `redis`.*not both/)
  })

  it("client must be an ioredis client", () => {
    for (const bad of [null, {}, "redis://127.0.0.1:6379"]) {
      const error = factoryError({ client: bad })
      expect(error.option).toBe("client")
      expect(error.message).toMatch(/ioredis Redis or Cluster/)
    }
  })
})

describe("maxAge as an option", () => {
  const refused: ReadonlyArray<readonly [unknown, RegExp]> = [
    [0, /v3 treated maxAge 0 as the 28-day default.*Omit maxAge.*positive duration/],
    ["0", /v3 treated maxAge 0 as the 28-day default/],
    [Duration.zero, /v3 treated maxAge 0 as the 28-day default/],
    ["", /v3 treated an empty maxAge as the 28-day default.*Omit maxAge/],
    ["  ", /empty maxAge/],
    [-1, /positive duration/],
    ["-5s", /positive duration/],
    [Number.NaN, /got NaN/],
    ["forever", /cannot parse "forever".*v3 silently used 28 days/],
    ["1 fortnight", /cannot parse/],
    [Number.POSITIVE_INFINITY, /at most 1000 years/],
    [0.25, /at least 1 ms/],
    [true, /must be milliseconds.*got true/]
  ]

  it("0, \"\", negative, NaN and unparseable values are refused by the factory", () => {
    for (const [maxAge, message] of refused) {
      const error = factoryError({ maxAge })
      expect(error.option, String(maxAge)).toBe("maxAge")
      expect(error.message, String(maxAge)).toMatch(message)
    }
  })

  it.effect("… and by SessionStore.layer; a per-call maxAge of 0 still means the store's default", () =>
    Effect.gen(function* () {
      for (const [maxAge, message] of refused) {
        const error = yield* layerError({ maxAge })
        expect(error).toBeInstanceOf(SessionConfigError)
        expect(error.option, String(maxAge)).toBe("maxAge")
        expect(error.message, String(maxAge)).toMatch(message)
      }
      // v3's meaning for a call's maxAge is unchanged: 0 is the default (here 2 hours).
      const ttl = yield* Effect.gen(function* () {
        const store = yield* SessionStore
        const id = yield* store.createSessionId
        yield* store.set(id, { a: 1 }, 0)
        const [hash] = yield* Effect.flatMap(Raw, (c) => pttls(c, [store.getSessionKey(id)]))
        yield* store.delete(id)
        return hash!
      }).pipe(Effect.provide(Layer.merge(storeLayer({ prefix: uniquePrefix("options"), maxAge: "2h" }), Raw.layer)))
      expect(ttl).toBeGreaterThan(2 * 3_600_000 - 60_000)
      expect(ttl).toBeLessThanOrEqual(2 * 3_600_000)
    })
  )
})

describe("option names", () => {
  it("an unknown name is refused with a did-you-mean when one is close", () => {
    const typo = factoryError({ referenecs: { user_id: {} } })
    expect(typo.option).toBe("referenecs")
    expect(typo.reason).toBe("unknown option `referenecs`; did you mean `references`?")
    expect(typo.message).toContain("unknown option `referenecs`; did you mean `references`?")
    expect(factoryError({ MaxAge: "2h" }).reason).toBe("unknown option `MaxAge`; did you mean `maxAge`?")
    expect(factoryError({ namspace: "app" }).reason).toBe("unknown option `namspace`; did you mean `namespace`?")
    expect(factoryError({ sigend: false }).reason).toBe("unknown option `sigend`; did you mean `signed`?")
    // Nothing close: no guess.
    expect(factoryError({ flavour: "vanilla" }).reason).toBe("unknown option `flavour`")
    // Names that are not options, with what to do instead.
    expect(factoryError({ url: "redis://127.0.0.1:6379" }).reason).toMatch(/connection settings go in `redis`/)
    expect(factoryError({ keys: ["k"] }).reason).toMatch(/app\.keys/)
    expect(factoryError({ limits: { maxFeilds: 10 } })).toMatchObject({
      option: "limits.maxFeilds",
      reason: "unknown option `limits.maxFeilds`; did you mean `limits.maxFields`?"
    })
  })

  it.effect("SessionStore.layer refuses names that are not the store's", () =>
    Effect.gen(function* () {
      const typo = yield* layerError({ referenecs: ["user_id"] })
      expect(typo).toBeInstanceOf(SessionConfigError)
      expect(typo).toMatchObject({ option: "referenecs", reason: "unknown option `referenecs`; did you mean `references`?" })
      expect(yield* layerError({ client: idle })).toMatchObject({ option: "client" })
      expect((yield* layerError({ client: idle })).reason).toMatch(/RedisClient\.layerFromClient/)
      expect((yield* layerError({ key: "sid" })).reason).toMatch(/option of the Koa factory/)
      expect(yield* layerError({ limits: { maxFeilds: 10 } })).toMatchObject({ option: "limits.maxFeilds" })
      expect(yield* layerError({ limits: 5 })).toMatchObject({ option: "limits" })
    })
  )

  // Every name v3's README and source read, plus the v4 ones: each is accepted, and a
  // one-letter slip of each is refused with the right suggestion.
  const v3Options: Record<string, unknown> = {
    client: undefined, // filled in per test
    references: { user_id: {} },
    maxAge: "28 days",
    prefix: "t:options:v3",
    namespace: "myapp",
    byteLength: 18,
    key: "session-id",
    signed: false,
    httpOnly: true,
    overwrite: true,
    saltLength: 8,
    secretLength: 18
  }
  const v4Options: Record<string, unknown> = {
    sameSite: "strict",
    secure: false,
    domain: "example.com",
    path: "/",
    priority: "medium",
    partitioned: false,
    timeout: "2 seconds",
    limits: { maxFields: 100, maxFieldLength: 64, maxValueBytes: 1024 }
  }
  // A transposition of two letters in the middle of the name.
  const slip = (name: string): string => {
    const i = Math.floor(name.length / 2) - 1
    return name.slice(0, i) + name[i + 1] + name[i] + name.slice(i + 2)
  }

  it("every option name v3 used (and every v4 one) is accepted; a slip of each gets a did-you-mean", async () => {
    await accepted({ ...v3Options, client: idle })
    await accepted({ ...v3Options, ...v4Options, client: idle })
    await accepted({ ...v3Options, client: undefined, redis: inject("redisUrl") })
    // v3's store-test form of references, and undefined as "not given".
    await accepted({ client: idle, references: { user_id: true, ip: true }, prefix: undefined, maxAge: undefined, referenecs: undefined })
    for (const [name, value] of Object.entries({ ...v3Options, ...v4Options, redis: "redis://x" })) {
      if (name === "client" || name === "redis") continue
      const wrong = slip(name)
      const error = factoryError({ [wrong]: value })
      expect(error.option, name).toBe(wrong)
      expect(error.reason, name).toBe(`unknown option \`${wrong}\`; did you mean \`${name}\`?`)
    }
  })

  it.effect("SessionStore.layer accepts the store's names (v3's object references included)", () =>
    Effect.gen(function* () {
      const store = { references: { user_id: {} }, maxAge: "28 days", prefix: uniquePrefix("options"), byteLength: 18, limits: { maxFields: 10 } }
      const built = yield* Effect.exit(Effect.scoped(Layer.build(storeLayer(store))))
      expect(Exit.isSuccess(built)).toBe(true)
      const namespaced = yield* Effect.exit(Effect.scoped(Layer.build(storeLayer({ namespace: "myapp" }))))
      expect(Exit.isSuccess(namespaced)).toBe(true)
      // And the factory's names are still refused there.
      expect(yield* layerError({ ...store, signed: false })).toMatchObject({ option: "signed" })
    })
  )
})

describe("referenced field names", () => {
  const bad: ReadonlyArray<SessionStoreOptions["references"]> = [["a", "a:{b"], ["user:id"], ["{x}"], ["a}"], { "org{1": {} }]

  it("names with :, { or } are refused by the factory, with the key rule as the reason", () => {
    for (const references of bad) {
      const error = factoryError({ references })
      expect(error.option).toBe("references")
      expect(error.message).toMatch(/may not contain ":", "\{" or "\}"/)
      expect(error.message).toContain("<prefix>:<field>:{<value>}")
    }
    const pair = factoryError({ references: ["a", "a:{b"] })
    expect(pair.reason).toContain('("a", "b:{c") and ("a:{b", "c") would share the key <prefix>:a:{b:{c}')
  })

  it.effect("… and by SessionStore.layer", () =>
    Effect.gen(function* () {
      for (const references of bad) {
        const error = yield* layerError({ references })
        expect(error).toBeInstanceOf(SessionConfigError)
        expect(error.option).toBe("references")
        expect(error.reason).toContain("<prefix>:<field>:{<value>}")
      }
      // Names without them are fine, and they keep their keys apart.
      const keys = yield* Effect.gen(function* () {
        const store = yield* SessionStore
        return [store.getReferenceKey("user_id", "b:{c"), store.getReferenceKey("org.id", "c")]
      }).pipe(Effect.provide(storeLayer({ prefix: "p", references: ["user_id", "org.id"] })))
      expect(new Set(keys).size).toBe(2)
    })
  )
})
