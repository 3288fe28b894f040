// Evidence for the README's "Redis configuration" section: revoke-all is only
// guaranteed under `maxmemory-policy noeviction`. Each describe starts its own
// small redis-server (scripts/redis-server.mjs) with a tiny `maxmemory`, and stops
// it, by its PID, in afterAll.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Redis } from "ioredis"
import { startRedis, type RunningRedis } from "../scripts/redis-server.mjs"
import koaRedisSessionSets, { RedisError } from "../src/index.js"
import { RedisClient } from "../src/RedisClient.js"
import { SessionStore } from "../src/SessionStore.js"
import { uniquePrefix } from "./utils.js"

/** Small, so a few thousand sessions overflow it; the empty server uses about 1 MB of it. */
const MAXMEMORY = "2mb"
const MAXMEMORY_BYTES = 2 * 1024 * 1024
const FIELD = "user_id"

/** A plain connection to one of this file's servers. */
class Raw extends Context.Tag("test/redisConfig/Raw")<Raw, Redis>() {}

/** The library's store over `url`, plus a raw client of the same server. */
const storeOn = (url: string, prefix: string) =>
  Layer.merge(
    SessionStore.layer({ prefix, references: [FIELD] }).pipe(Layer.provide(RedisClient.layer(url))),
    Layer.scoped(
      Raw,
      Effect.acquireRelease(
        Effect.sync(() => new Redis(url)),
        (client) => Effect.promise(() => client.quit().catch(() => "OK"))
      )
    )
  )

const raw = <A>(f: (client: Redis) => Promise<A>) => Effect.flatMap(Raw, (client) => Effect.promise(() => f(client)))

/** A number from `INFO <section>`, e.g. `info("stats", "evicted_keys")`. */
const info = (section: string, name: string) =>
  raw(async (client) => {
    const match = (await client.info(section)).match(new RegExp(`^${name}:(\\d+)`, "m"))
    if (match === null) throw new Error(`INFO ${section} has no ${name}`)
    return Number(match[1])
  })

/** One command per item on the raw client, in pipelines of 500 (small query buffers); the replies in order. */
const pipelined = <A>(items: ReadonlyArray<A>, command: (pipeline: ReturnType<Redis["pipeline"]>, item: A) => void) =>
  raw(async (client) => {
    const replies: Array<unknown> = []
    for (let i = 0; i < items.length; i += 500) {
      const pipeline = client.pipeline()
      for (const item of items.slice(i, i + 500)) command(pipeline, item)
      for (const [error, reply] of (await pipeline.exec()) ?? []) {
        if (error) throw error
        replies.push(reply)
      }
    }
    return replies
  })

// ---- Under an eviction policy, revoke-all can miss a live session ----

const EVICTION_POLICIES = ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random"] as const
/** Stop writing once Redis has evicted this many keys... */
const ENOUGH_EVICTIONS = 300
/** ...and fail if it has not after this many sessions (the server would be far bigger than asked). */
const MAX_SESSIONS = 40_000
const BATCH = 250

for (const policy of EVICTION_POLICIES) {
  describe(`maxmemory-policy ${policy}`, () => {
    let server: RunningRedis
    beforeAll(async () => {
      server = await startRedis({ args: ["--maxmemory", MAXMEMORY, "--maxmemory-policy", policy] })
    })
    afterAll(async () => {
      await server?.stop()
    })

    it.effect(`under ${policy} a live session can vanish from its reference set, so revoke-all misses it`, () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        // One user per session, so every session has a reference set of its own.
        const sessions: Array<{ readonly id: string; readonly user: string }> = []
        let evicted = 0
        while (evicted < ENOUGH_EVICTIONS) {
          if (sessions.length >= MAX_SESSIONS) throw new Error(`${policy}: only ${evicted} keys evicted after ${sessions.length} sessions`)
          const batch = yield* Effect.forEach(
            Array.from({ length: BATCH }, (_, i) => `u${sessions.length + i}`),
            (user) =>
              Effect.gen(function* () {
                const id = yield* store.createSessionId
                yield* store.set(id, { [FIELD]: user, name: "x".repeat(64) })
                return { id, user }
              }),
            { concurrency: 50 }
          )
          sessions.push(...batch)
          evicted = yield* info("stats", "evicted_keys")
        }

        // Look at what eviction left without evicting more: lift the limit first.
        yield* raw((c) => c.config("SET", "maxmemory", "0"))
        const alive = (yield* pipelined(sessions, (p, { id }) => p.exists(store.getSessionKey(id)))) as Array<number>
        const setAlive = (yield* pipelined(sessions, (p, { user }) => p.exists(store.getReferenceKey(FIELD, user)))) as Array<number>
        const orphans = sessions.filter((_, i) => alive[i] === 1 && setAlive[i] === 0)
        // Overwhelmingly likely: Redis picks hashes and sets alike, and it evicted hundreds of keys.
        expect(orphans.length).toBeGreaterThan(0)
        if (policy.startsWith("volatile-")) {
          // volatile-* only evicts keys with an expire set: this library's reference sets have one.
          const live = sessions.find((_, i) => setAlive[i] === 1)!
          expect(yield* raw((c) => c.pttl(store.getReferenceKey(FIELD, live.user)))).toBeGreaterThan(0)
        }

        // The orphan is a working session...
        const { id, user } = orphans[0]!
        expect(yield* store.get(id)).toEqual({ id, [FIELD]: user, name: "x".repeat(64) })
        // ...that "list / sign out everywhere" for its user cannot find.
        expect(yield* store.listByReference(FIELD, user)).toEqual([])
        expect(yield* store.deleteByReference(FIELD, user)).toBe(0)
        expect(yield* store.get(id, [FIELD])).toEqual({ id, [FIELD]: user })
        expect(yield* raw((c) => c.exists(store.getSessionKey(id)))).toBe(1)
      }).pipe(Effect.provide(storeOn(server.url, uniquePrefix(`redis-config-${policy}`))))
    )
  })
}

// ---- Under noeviction, a write over the limit fails whole, and revoke-all keeps working ----

describe("maxmemory-policy noeviction", () => {
  let server: RunningRedis
  beforeAll(async () => {
    server = await startRedis({ args: ["--maxmemory", MAXMEMORY, "--maxmemory-policy", "noeviction"] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  const store = () => storeOn(server.url, uniquePrefix("redis-config-noeviction"))

  /** Puts the server past its limit whatever the next command's size: `maxmemory` just under what it uses now. */
  const pinOverLimit = Effect.gen(function* () {
    const used = yield* info("memory", "used_memory")
    yield* raw((c) => c.config("SET", "maxmemory", String(used - 64 * 1024)))
    return used
  })
  /** No limit while a test writes the state it starts from. */
  const liftLimit = raw((c) => c.config("SET", "maxmemory", "0"))
  /** Gives the server back the limit it started with. */
  const restoreLimit = raw((c) => c.config("SET", "maxmemory", String(MAXMEMORY_BYTES)))

  const expectOom = (error: unknown, operation: string) => {
    expect(error).toBeInstanceOf(RedisError)
    const redisError = error as RedisError
    expect(redisError._tag).toBe("RedisError")
    expect(redisError.operation).toBe(operation)
    expect(String((redisError.cause as Error).message)).toMatch(/^OOM command not allowed when used memory > 'maxmemory'/)
  }

  it.effect("under noeviction a new session over maxmemory fails with RedisError (OOM) and nothing of it is written", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      // Write sessions through the library until Redis refuses one.
      let written = 0
      let failure: { readonly id: string; readonly user: string; readonly error: unknown } | undefined
      while (failure === undefined) {
        if (written > 10_000) throw new Error(`noeviction: ${written} sessions written and none refused`)
        const id = yield* store.createSessionId
        const user = `u${written}`
        const exit = yield* Effect.either(store.set(id, { [FIELD]: user, data: "x".repeat(2048) }))
        if (exit._tag === "Left") failure = { id, user, error: exit.left }
        else written++
      }
      expect(written).toBeGreaterThan(100)
      expectOom(failure.error, "SessionStore.set")
      expect(yield* raw((c) => c.exists(store.getSessionKey(failure.id)))).toBe(0)
      expect(yield* raw((c) => c.exists(store.getReferenceKey(FIELD, failure.user)))).toBe(0)
      expect(yield* store.listByReference(FIELD, failure.user)).toEqual([])
      // Redis refused it from inside the script, at its first write (HSET), not before it ran.
      expect(String((failure.error as RedisError).cause)).toMatch(/script: [0-9a-f]{40}, on @user_script:\d+/)
      // Free the server for the next tests (deletes are allowed over the limit).
      const keys = yield* raw((c) => c.keys(`${store.prefix}:*`))
      yield* pipelined(keys, (p, key) => p.del(key))
    }).pipe(Effect.ensuring(restoreLimit), Effect.provide(store()))
  )

  it.effect("under noeviction an update over maxmemory that keeps the referenced value fails whole: the old session is intact", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      yield* liftLimit
      const id = yield* store.createSessionId
      yield* store.set(id, { [FIELD]: "ann", name: "old" })
      const setKey = store.getReferenceKey(FIELD, "ann")
      const ttlBefore = yield* raw((c) => c.pttl(store.getSessionKey(id)))
      yield* pinOverLimit
      const error = yield* Effect.flip(store.set(id, { [FIELD]: "ann", name: "new", extra: "y" }, "30 days"))
      expectOom(error, "SessionStore.set")
      expect(yield* store.get(id)).toEqual({ id, [FIELD]: "ann", name: "old" })
      // Not even the TTL moved (30 days would be more than the 28-day default).
      expect(yield* raw((c) => c.pttl(store.getSessionKey(id)))).toBeLessThanOrEqual(ttlBefore)
      expect(yield* raw((c) => c.smembers(setKey))).toEqual([id])
    }).pipe(Effect.ensuring(restoreLimit), Effect.provide(store()))
  )

  it.effect("under noeviction a write that changes the referenced value is still applied, whole, over maxmemory (its first write is a removal)", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      yield* liftLimit
      const id = yield* store.createSessionId
      yield* store.set(id, { [FIELD]: "bob", name: "old" })
      const limit = (yield* pinOverLimit) - 64 * 1024
      // The script's first write is SREM (from bob's set), which Redis allows over the
      // limit; once a script has written, Redis lets the rest of it run (HSET, SADD).
      yield* store.set(id, { [FIELD]: "carol", name: "new" })
      expect(yield* store.get(id)).toEqual({ id, [FIELD]: "carol", name: "new" })
      expect(yield* raw((c) => c.exists(store.getReferenceKey(FIELD, "bob")))).toBe(0)
      expect(yield* raw((c) => c.smembers(store.getReferenceKey(FIELD, "carol")))).toEqual([id])
      expect(yield* raw((c) => c.pttl(store.getReferenceKey(FIELD, "carol")))).toBeGreaterThan(0)
      expect(yield* store.listByReference(FIELD, "carol")).toEqual([id])
      expect(yield* info("memory", "used_memory")).toBeGreaterThan(limit)
    }).pipe(Effect.ensuring(restoreLimit), Effect.provide(store()))
  )

  it.effect("under noeviction revoke-all and delete still work when Redis is full", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      yield* liftLimit
      const ids = yield* Effect.all(Array.from({ length: 3 }, () => store.createSessionId))
      for (const id of ids) yield* store.set(id, { [FIELD]: "dan" })
      const other = yield* store.createSessionId
      yield* store.set(other, { [FIELD]: "eve" })
      yield* pinOverLimit
      // A new write is refused...
      expectOom(yield* Effect.flip(store.set(yield* store.createSessionId, { [FIELD]: "dan" })), "SessionStore.set")
      // ...but signing out everywhere, and signing out, are not.
      expect(yield* store.deleteByReference(FIELD, "dan")).toBe(3)
      expect(yield* store.listByReference(FIELD, "dan")).toEqual([])
      for (const id of ids) expect(yield* store.get(id)).toEqual({})
      expect(yield* store.delete(other)).toBe(true)
      expect(yield* raw((c) => c.exists(store.getSessionKey(other), store.getReferenceKey(FIELD, "eve")))).toBe(0)
    }).pipe(Effect.ensuring(restoreLimit), Effect.provide(store()))
  )

  it("under noeviction the Promise store rejects a write over maxmemory with RedisError and writes nothing", async () => {
    const mw = koaRedisSessionSets({ keys: ["k"] }, { redis: server.url, signed: false, prefix: uniquePrefix("redis-config-facade"), references: { [FIELD]: {} } })
    const client = new Redis(server.url)
    try {
      await client.config("SET", "maxmemory", "0")
      const existing = mw.store.createSessionId()
      await mw.store.set(existing, { [FIELD]: "fay", name: "old" })
      const used = Number((await client.info("memory")).match(/^used_memory:(\d+)/m)![1])
      await client.config("SET", "maxmemory", String(used - 64 * 1024))
      const id = mw.store.createSessionId()
      const rejection = mw.store.set(id, { [FIELD]: "gus" })
      await expect(rejection).rejects.toBeInstanceOf(RedisError)
      await expect(rejection).rejects.toThrow(/^Redis SessionStore\.set failed: OOM command not allowed/)
      await expect(mw.store.set(existing, { name: "new" })).rejects.toBeInstanceOf(RedisError)
      expect(await client.exists(mw.store.getSessionKey(id), mw.store.getReferenceKey(FIELD, "gus"))).toBe(0)
      expect(await mw.store.get(existing)).toEqual({ id: existing, [FIELD]: "fay", name: "old" })
      expect(await mw.store.listByReference(FIELD, "fay")).toEqual([existing])
    } finally {
      await client.config("SET", "maxmemory", String(MAXMEMORY_BYTES))
      client.disconnect()
      await mw.close()
    }
  })
})
