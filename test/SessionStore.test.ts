import { describe, expect, it, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Layer } from "effect"
import { Redis } from "ioredis"
import { RedisClient, RedisTimeoutError } from "../src/RedisClient.js"
import { RedisError } from "../src/SessionError.js"
import { SessionStore, type SessionStoreOptions } from "../src/SessionStore.js"
import { commandsDuringEffect } from "./commands.js"
import {
  AnyRaw,
  ClusterStoreTest,
  keysUnderAny,
  raw,
  Raw,
  rawAny,
  redisUrl,
  RedisTest,
  storeLayer,
  StoreTest,
  ttlsAtOnce,
  uniquePrefix
} from "./utils.js"
import { BACKENDS, Storage } from "./storage.js"

const DAY = 24 * 60 * 60 * 1000

/**
 * The store contract. It runs over a single redis-server, over a 3-master Redis
 * Cluster (where a session's hash and its reference sets live on different nodes:
 * every assertion must hold as soon as the call returns), and over the memory store;
 * what each holds is read through its Storage view (test/storage.ts).
 */
const storeSuite = (name: string, makeLayer: (typeof BACKENDS)[number][1]) => {
  const prefix = uniquePrefix(`store-${name}`)

  layer(makeLayer({ prefix, references: { user_id: {}, team: {} } }))(`SessionStore (${name})`, (it) => {
    it.effect("creates base64url ids of byteLength bytes", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const ids = yield* Effect.all(Array.from({ length: 50 }, () => store.createSessionId))
        for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{24}$/)
        expect(new Set(ids).size).toBe(50)
      })
    )

    it.effect("uses v3's key layout", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        expect(store.getSessionKey("abcdefghijklmnop")).toBe(`${prefix}:{abcdefghijklmnop}`)
        expect(store.getReferenceKey("user_id", 1)).toBe(`${prefix}:user_id:{1}`)
        expect(store.getReferenceKey("user_id", "a")).toBe(`${prefix}:user_id:{a}`)
      })
    )

    it.effect("get of a missing session is {} and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        expect(yield* store.get(id)).toEqual({})
        expect(yield* store.get(id, ["user_id"])).toEqual({})
        expect(yield* storage.hasSession(id)).toBe(false)
      })
    )

    it.effect("set then get returns strings and the id", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const id = yield* store.createSessionId
        yield* store.set(id, { name: "ann", age: 42, admin: true })
        expect(yield* store.get(id)).toEqual({ id, name: "ann", age: "42", admin: "true" })
        expect(yield* store.get(id, ["name", "missing"])).toEqual({ id, name: "ann" })
        yield* store.set(id, { age: 43 })
        expect(yield* store.get(id)).toEqual({ id, name: "ann", age: "43", admin: "true" })
      })
    )

    it.effect("set sets the hash TTL to maxAge (default 28 days)", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        yield* store.set(id, { a: 1 })
        const ttl = yield* storage.ttl(id)
        expect(ttl).toBeGreaterThan(28 * DAY - 60_000)
        expect(ttl).toBeLessThanOrEqual(28 * DAY)
        yield* store.set(id, { a: 2 }, "2h")
        const ttl2 = yield* storage.ttl(id)
        expect(ttl2).toBeGreaterThan(2 * 3600_000 - 60_000)
        expect(ttl2).toBeLessThanOrEqual(2 * 3600_000)
        yield* store.set(id, { a: 3 }, Duration.minutes(5))
        const ttl3 = yield* storage.ttl(id)
        expect(ttl3).toBeLessThanOrEqual(300_000)
      })
    )

    it.effect("a referenced field puts the id in its value's set, and a change moves it", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        yield* store.set(id, { user_id: 1, team: "red" })
        expect(yield* storage.members("user_id", "1")).toEqual([id])
        expect(yield* storage.members("team", "red")).toEqual([id])
        // v3 left the id in the old set here.
        yield* store.set(id, { user_id: 2 })
        expect(yield* storage.members("user_id", "1")).toEqual([])
        expect(yield* storage.members("user_id", "2")).toEqual([id])
        expect(yield* storage.members("team", "red")).toEqual([id])
      })
    )

    it.effect("unset removes fields and the id from their sets", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        yield* store.set(id, { user_id: 7, team: "blue", name: "x" })
        yield* store.unset(id, ["user_id", "name"])
        expect(yield* store.get(id)).toEqual({ id, team: "blue" })
        expect(yield* storage.members("user_id", "7")).toEqual([])
        expect(yield* storage.members("team", "blue")).toEqual([id])
      })
    )

    it.effect("unset of a missing session writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        yield* store.unset(id, ["name"])
        expect(yield* storage.hasSession(id)).toBe(false)
      })
    )

    it.effect("delete removes the hash and the id from every set", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        const other = yield* store.createSessionId
        yield* store.set(id, { user_id: 8, team: "green" })
        yield* store.set(other, { user_id: 8 })
        expect(yield* store.delete(id)).toBe(true)
        expect(yield* store.get(id)).toEqual({})
        // v3 left the id in both sets.
        expect(yield* storage.members("user_id", "8")).toEqual([other])
        expect(yield* storage.members("team", "green")).toEqual([])
        expect(yield* store.delete(id)).toBe(false)
      })
    )


    it.effect("touch of a missing session is false and writes nothing", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        expect(yield* store.touch(id)).toBe(false)
        expect(yield* storage.hasSession(id)).toBe(false)
      })
    )

    it.effect("setExisting writes only an existing session", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        expect(yield* store.setExisting(id, { user_id: 10 })).toBe(false)
        // One key per EXISTS: a cluster refuses multi-key commands across slots.
        expect(yield* storage.hasSession(id)).toBe(false)
        expect(yield* storage.members("user_id", "10")).toEqual([])
        yield* store.set(id, { name: "n" })
        expect(yield* store.setExisting(id, { user_id: 10 })).toBe(true)
        expect(yield* store.get(id)).toEqual({ id, name: "n", user_id: "10" })
      })
    )

    it.effect("regenerate moves the data and references to a new id", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        yield* store.set(id, { user_id: 11, name: "r" })
        const next = yield* store.regenerate(id)
        expect(next).toBeDefined()
        expect(next).not.toBe(id)
        expect(yield* store.get(id)).toEqual({})
        expect(yield* store.get(next!)).toEqual({ id: next, user_id: "11", name: "r" })
        expect(yield* storage.members("user_id", "11")).toEqual([next])
        expect(yield* store.regenerate(id)).toBeUndefined()
        const taken = yield* store.createSessionId
        yield* store.set(taken, { name: "t" })
        const error = yield* Effect.flip(store.regenerate(next!, taken))
        expect(error._tag).toBe("InvalidSessionId")
        expect(yield* store.get(next!)).toEqual({ id: next, user_id: "11", name: "r" })
      })
    )

    it.effect("listByReference returns live sessions and prunes dead ones", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const live = yield* store.createSessionId
        const dead = yield* store.createSessionId
        yield* store.set(live, { user_id: 12 })
        yield* store.set(dead, { user_id: 12 })
        yield* storage.expire(dead)
        expect((yield* storage.members("user_id", "12")).length).toBe(storage.keepsExpiredMembers ? 2 : 1)
        expect(yield* store.listByReference("user_id", 12)).toEqual([live])
        expect(yield* storage.members("user_id", "12")).toEqual([live])
        expect(yield* store.listByReference("user_id", 999)).toEqual([])
      })
    )

    it.effect("deleteByReference deletes every session of a value and nothing else", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const mine = yield* Effect.all(Array.from({ length: 20 }, () => store.createSessionId))
        const other = yield* store.createSessionId
        for (const id of mine) yield* store.set(id, { user_id: 13, team: "t13" })
        yield* store.set(other, { user_id: 14, team: "t13" })
        expect(yield* store.deleteByReference("user_id", 13)).toBe(20)
        for (const id of mine) expect(yield* store.get(id)).toEqual({})
        expect(yield* storage.members("user_id", "13")).toEqual([])
        // Their other references are gone too.
        expect(yield* storage.members("team", "t13")).toEqual([other])
        expect(yield* store.get(other)).toEqual({ id: other, user_id: "14", team: "t13" })
        expect(yield* store.deleteByReference("user_id", 13)).toBe(0)
      })
    )

    it.effect("listByReference and deleteByReference refuse unconfigured fields", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        expect((yield* Effect.flip(store.listByReference("name", "x")))._tag).toBe("InvalidSessionData")
        expect((yield* Effect.flip(store.deleteByReference("name", "x")))._tag).toBe("InvalidSessionData")
      })
    )

    it.effect("200 concurrent conflicting sets leave the id in exactly one set, matching the hash", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const storage = yield* Storage
        const id = yield* store.createSessionId
        const values = Array.from({ length: 200 }, (_, i) => `c${i % 7}`)
        yield* Effect.all(
          values.map((team) => store.set(id, { team })),
          { concurrency: "unbounded" }
        )
        const final = (yield* store.get(id))["team"]!
        const holding: Array<string> = []
        for (let i = 0; i < 7; i++) {
          if ((yield* storage.members("team", `c${i}`)).includes(id)) holding.push(`c${i}`)
        }
        expect(holding).toEqual([final])
      })
    )

    it.effect("fields named __proto__, constructor, prototype never pollute returned objects", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const id = yield* store.createSessionId
        // JSON.parse makes `__proto__` an own key (an object literal would set the prototype instead).
        const values = JSON.parse('{"__proto__":"p","constructor":"c","prototype":"q"}') as Record<string, string>
        expect(Object.keys(values)).toEqual(["__proto__", "constructor", "prototype"])
        yield* store.set(id, values)
        for (const session of [yield* store.get(id), yield* store.get(id, ["__proto__", "constructor", "prototype"])]) {
          // A plain object whose prototype is untouched, the three names its own data properties.
          expect(Object.getPrototypeOf(session)).toBe(Object.prototype)
          expect(Object.keys(session).sort()).toEqual(["__proto__", "constructor", "id", "prototype"])
          for (const [field, value] of Object.entries(values)) {
            expect(Object.hasOwn(session, field), `own ${field}`).toBe(true)
            expect(Object.getOwnPropertyDescriptor(session, field)?.value, field).toBe(value)
          }
        }
      })
    )
  })

}


/** What only the Redis stores hold: reference sets with their own TTLs, keys under the prefix, the hash itself. */
const redisSuite = (name: string, makeLayer: (options: SessionStoreOptions) => Layer.Layer<SessionStore | AnyRaw, unknown>) => {
  layer(makeLayer({ prefix: uniquePrefix(`redis-${name}`), references: { user_id: {}, team: {} } }))(`SessionStore in Redis (${name})`, (it) => {
    it.effect("reference sets live at least as long as their longest-lived member", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const rawClient = yield* AnyRaw
        const a = yield* store.createSessionId
        const b = yield* store.createSessionId
        const setKey = store.getReferenceKey("user_id", 9)
        yield* store.set(a, { user_id: 9 }, 60_000)
        let [hashTtl, setTtl] = yield* ttlsAtOnce(rawClient, [store.getSessionKey(a), setKey])
        expect(setTtl).toBeGreaterThanOrEqual(hashTtl!)
        expect(setTtl).toBeLessThanOrEqual(60_000)
        // A longer-lived member extends the set...
        yield* store.set(b, { user_id: 9 }, 600_000)
        ;[hashTtl, setTtl] = yield* ttlsAtOnce(rawClient, [store.getSessionKey(b), setKey])
        expect(setTtl).toBeGreaterThanOrEqual(hashTtl!)
        expect(setTtl).toBeGreaterThan(500_000)
        // ...a shorter write never shortens it...
        yield* store.set(b, { name: "b" }, 30_000)
        ;[setTtl] = yield* ttlsAtOnce(rawClient, [setKey])
        expect(setTtl).toBeGreaterThan(500_000)
        // ...and touch extends it.
        expect(yield* store.touch(a, 3_600_000)).toBe(true)
        ;[hashTtl, setTtl] = yield* ttlsAtOnce(rawClient, [store.getSessionKey(a), setKey])
        expect(hashTtl).toBeGreaterThan(3_500_000)
        expect(setTtl).toBeGreaterThanOrEqual(hashTtl!)
      })
    )

    it.effect("fields named __proto__, constructor, prototype are plain fields of the hash", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const id = yield* store.createSessionId
        yield* store.set(id, JSON.parse('{"__proto__":"p","constructor":"c","prototype":"q"}') as Record<string, string>)
        // HGETALL through a raw client (ioredis keeps `__proto__` an own key of the object it returns).
        const hash = yield* rawAny((c) => c.hgetall(store.getSessionKey(id)))
        expect(Object.keys(hash).sort()).toEqual(["__proto__", "constructor", "id", "prototype"])
        expect(Object.getOwnPropertyDescriptor(hash, "__proto__")?.value).toBe("p")
      })
    )
  })

  describe(`Redis keys written (${name})`, () => {
    it.effect("a fresh store writes only keys under its prefix", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const rawClient = yield* AnyRaw
        const id = yield* store.createSessionId
        yield* store.set(id, { user_id: 1 })
        expect((yield* keysUnderAny(rawClient, store.prefix)).sort()).toEqual([store.getReferenceKey("user_id", 1), store.getSessionKey(id)].sort())
      }).pipe(Effect.provide(makeLayer({ prefix: uniquePrefix(`keys-${name}`), references: ["user_id"] })))
    )
  })
}

for (const [name, makeLayer] of BACKENDS) storeSuite(name, makeLayer)
redisSuite("single server", (options) => Layer.merge(storeLayer(options), AnyRaw.standalone))
redisSuite("cluster", ClusterStoreTest)

layer(StoreTest({ prefix: uniquePrefix("store-scripts"), references: { user_id: {}, team: {} } }))("SessionStore scripts (single server)", (it) => {
  it.effect("runs EVALSHA once per write, loading the script with EVAL only after NOSCRIPT", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const id = yield* store.createSessionId
      const rawClient = yield* Raw
      yield* raw((c) => c.script("FLUSH"))
      const first = yield* commandsDuringEffect(rawClient, store.set(id, { a: 1 }))
      expect(first.ran["evalsha"] ?? 0).toBe(1)
      expect(first.ran["eval"] ?? 0).toBe(1)
      const second = yield* commandsDuringEffect(rawClient, store.set(id, { a: 2 }))
      expect(second.ran["evalsha"] ?? 0).toBe(1)
      expect(second.ran["eval"] ?? 0).toBe(0)
      expect(yield* store.get(id)).toEqual({ id, a: "2" })
    })
  )
})

describe("SessionStore options", () => {
  const withStore = <A, E>(options: Parameters<typeof SessionStore.layer>[0], f: (store: SessionStore["Type"]) => Effect.Effect<A, E>) =>
    Effect.flatMap(SessionStore, f).pipe(Effect.provide(SessionStore.layer(options).pipe(Layer.provide(RedisTest))))

  it.effect("namespace becomes the v3 prefix", () =>
    withStore({ namespace: "app" }, (store) =>
      Effect.sync(() => {
        expect(store.prefix).toBe("koa-redis-session-sets:app")
        expect(store.getSessionKey("abcdefghijklmnop")).toBe("koa-redis-session-sets:app:{abcdefghijklmnop}")
      })
    )
  )

  it.effect("prefix wins over namespace; no prefix is v3's empty prefix", () =>
    Effect.gen(function* () {
      expect(yield* withStore({ prefix: "p", namespace: "n" }, (s) => Effect.succeed(s.prefix))).toBe("p")
      expect(yield* withStore({}, (s) => Effect.succeed(s.getReferenceKey("user_id", 1)))).toBe(":user_id:{1}")
    })
  )

  it.effect("references as an array or v3's object form", () =>
    Effect.gen(function* () {
      expect(yield* withStore({ references: ["user_id", "team"] }, (s) => Effect.succeed(s.references))).toEqual(["user_id", "team"])
      expect(yield* withStore({ references: { user_id: {}, org: null } }, (s) => Effect.succeed(s.references))).toEqual(["user_id", "org"])
    })
  )

  it.effect("maxAge accepts milliseconds, v3 strings, Effect strings and Durations; months are refused", () =>
    Effect.gen(function* () {
      const of = (maxAge: NonNullable<Parameters<typeof SessionStore.layer>[0]>["maxAge"]) => withStore({ maxAge }, (s) => Effect.succeed(s.maxAgeMillis))
      expect(yield* of(undefined)).toBe(28 * DAY)
      expect(yield* of(1000)).toBe(1000)
      expect(yield* of("28 days")).toBe(28 * DAY)
      expect(yield* of("2h")).toBe(7_200_000)
      expect(yield* of("1.5 hours")).toBe(5_400_000)
      expect(yield* of("250 millis")).toBe(250)
      expect(yield* of(Duration.days(1))).toBe(DAY)
      // `ms` has no months (v3 silently used 28 days): refused rather than guessed.
      const month = yield* Effect.flip(withStore({ maxAge: "1 month" }, () => Effect.void))
      expect(month).toMatchObject({ _tag: "SessionConfigError", option: "maxAge" })
    })
  )

  it.effect("bad options fail with SessionConfigError naming the option", () =>
    Effect.gen(function* () {
      const bad = [
        [{ maxAge: "soon" }, "maxAge"],
        [{ maxAge: -5 }, "maxAge"],
        [{ byteLength: 4 }, "byteLength"],
        [{ byteLength: 1.5 }, "byteLength"],
        [{ references: ["id"] }, "references"],
        [{ references: [""] }, "references"],
        [{ references: ["a\nb"] }, "references"],
        [{ prefix: 5 }, "prefix"]
      ] as const
      for (const [options, option] of bad) {
        const exit = yield* Effect.exit(withStore(options as never, () => Effect.void))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = yield* Effect.flip(withStore(options as never, () => Effect.void))
        expect(error).toMatchObject({ _tag: "SessionConfigError", option })
      }
    })
  )
})

describe("RedisClient", () => {
  it.effect("layerFromClient never quits the caller's client", () =>
    Effect.gen(function* () {
      const rawClient = yield* Raw
      const ping = Effect.flatMap(RedisClient, (redis) => redis.use("PING", (c) => c.ping()))
      expect(yield* ping.pipe(Effect.provide(RedisClient.layerFromClient(rawClient)))).toBe("PONG")
      expect(rawClient.status).toBe("ready")
      expect(yield* raw((c) => c.ping())).toBe("PONG")
    }).pipe(Effect.provide(Raw.layer))
  )

  it.live("layer connects before it is ready and quits its own client on release", () =>
    Effect.gen(function* () {
      const client = yield* Effect.scoped(
        Effect.gen(function* () {
          const redis = yield* RedisClient.make(redisUrl())
          expect(redis.client.status).toBe("ready")
          return redis.client
        })
      )
      expect(client.status).toBe("end")
    })
  )

  it("use, unsafeSend and unsafeCall: the reply, a Redis error or a timeout as RedisError, each call settled once", async () => {
    // A connection of its own: each BLPOP holds it for 0.6 s.
    const client = new Redis(redisUrl())
    try {
      const redis = RedisClient.unsafeFromClient(client, { timeout: "250 millis" })
      expect(await redis.unsafeSend("PING", (c) => c.ping())).toBe("PONG")
      expect(await Effect.runPromise(redis.use("PING", (c) => c.ping()))).toBe("PONG")

      const failed = await redis.unsafeSend("BAD", (c) => c.call("NOSUCHCOMMAND")).catch((e: unknown) => e)
      expect(failed).toBeInstanceOf(RedisError)
      expect((failed as RedisError).operation).toBe("BAD")
      const thrown = await redis.unsafeSend("THROWS", () => {
        throw new Error("synchronous")
      }).catch((e: unknown) => e)
      expect((thrown as RedisError).cause).toEqual(new Error("synchronous"))

      // No reply within the timeout: RedisError(RedisTimeoutError); the late reply is ignored.
      const outcomes: Array<string> = []
      const settled = new Promise<void>((resolve) =>
        redis.unsafeCall(
          "BLPOP",
          (c) => c.blpop(`t:blpop:${process.pid}`, 0.6),
          () => outcomes.push("reply"),
          (error) => {
            outcomes.push(error.cause instanceof RedisTimeoutError ? "timeout" : "other")
            resolve()
          }
        )
      )
      await settled
      const viaEffect = await Effect.runPromise(Effect.flip(redis.use("BLPOP", (c) => c.blpop(`t:blpop:${process.pid}`, 0.6))))
      expect(viaEffect.cause).toBeInstanceOf(RedisTimeoutError)
      // Each BLPOP answers (nil) after 0.6 s, one after the other; both had timed out by then.
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      expect(outcomes).toEqual(["timeout"])
      expect(await redis.unsafeSend("PING", (c) => c.ping())).toBe("PONG")
    } finally {
      client.disconnect()
    }
  })

  it.live("a connection refused fails the layer with RedisError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.scoped(RedisClient.make({ host: "127.0.0.1", port: 1, connectTimeout: "1 second", options: { retryStrategy: () => null } }))
      )
      expect(error._tag).toBe("RedisError")
    })
  )
})
