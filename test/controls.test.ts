// The account controls (issue 13) as a contract of every backend: the absolute lifetime,
// per-value caps, rolling reads and last-seen, the session list, revoke-others. Redis
// backends run with short limits and real waiting; the memory store on the TestClock.
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Exit, Stream } from "effect"
import { backendOf } from "../src/internal/store/service.js"
import { toEffect } from "../src/internal/store/run.js"
import type { ClientInfo } from "../src/internal/store/controls.js"
import { InvalidSessionData, SessionConfigError } from "../src/SessionError.js"
import { SessionStore, type SessionEviction, type SessionStoreOptions, type SessionStoreService } from "../src/SessionStore.js"
import { BACKENDS, Storage } from "./storage.js"
import { RedisClusterTest, RedisTest, uniquePrefix } from "./utils.js"

/** A Session's read (internal: `ctx.session.get` goes through it). */
const read = (store: SessionStoreService, id: string, fields?: ReadonlyArray<string>, client?: ClientInfo) =>
  Effect.suspend(() => toEffect(backendOf(store).redis, backendOf(store).actions.read(id, fields, client)))

const listAll = (store: SessionStoreService, field: string, value: string) =>
  Effect.map(Stream.runCollect(store.listSessions(field, value)), Chunk.toArray)

const newSession = (store: SessionStoreService, values: Record<string, string>) =>
  Effect.gen(function* () {
    const id = yield* store.createSessionId
    yield* store.set(id, values)
    return id
  })

const suite = (name: string, makeLayer: (typeof BACKENDS)[number][1]) => {
  describe(`account controls (${name})`, () => {
    // ---- absolute lifetime ----
    const absolute = uniquePrefix(`abs-${name}`)
    layer(makeLayer({ prefix: absolute, references: ["user_id"], maxAge: 400, absoluteMaxAge: 700 }))("absoluteMaxAge", (it) => {
      it.effect("an active session dies at its absolute deadline: touch near it does not extend it, the set drops it", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const storage = yield* Storage
          const id = yield* newSession(store, { user_id: "ada" })
          const created = (yield* store.lifetime(id))!.createdAt!
          // (150 ms apart, not 200: a cluster touch is three round trips, and a loaded machine
          // must not run the last one past the deadline.)
          for (let i = 0; i < 3; i++) {
            yield* storage.wait(150)
            expect(yield* store.touch(id)).toBe(true)
          }
          // 450 ms in: a touch asks for 400 more; the deadline (700) allows about 250.
          const now = yield* storage.now
          const left = yield* storage.ttl(id)
          expect(left).toBeGreaterThan(0)
          expect(now + left).toBeLessThanOrEqual(created + 700 + storage.slack)
          const lifetime = (yield* store.lifetime(id))!
          expect(lifetime.absoluteExpiresAt).toBe(created + 700)
          expect(lifetime.expiresAt!).toBeLessThanOrEqual(created + 700 + storage.slack)
          yield* storage.wait(300)
          expect(yield* store.get(id)).toEqual({})
          expect(yield* store.touch(id)).toBe(false)
          expect(yield* store.setExisting(id, { a: "1" })).toBe(false)
          expect(yield* store.listByReference("user_id", "ada")).toEqual([])
          expect(yield* storage.members("user_id", "ada")).toEqual([])
        })
      )

      it.effect("set, unset and regenerate never give a TTL past the deadline; regenerate keeps the creation time", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const storage = yield* Storage
          const id = yield* newSession(store, { user_id: "bob" })
          const created = (yield* store.lifetime(id))!.createdAt!
          yield* storage.wait(250)
          expect(yield* store.touch(id)).toBe(true)
          yield* storage.wait(200)
          yield* store.set(id, { a: "1" }, 10_000)
          let now = yield* storage.now
          expect(now + (yield* storage.ttl(id))).toBeLessThanOrEqual(created + 700 + storage.slack)
          expect(yield* store.unset(id, ["a"], 10_000)).toBe(true)
          now = yield* storage.now
          expect(now + (yield* storage.ttl(id))).toBeLessThanOrEqual(created + 700 + storage.slack)
          const next = (yield* store.regenerate(id, undefined, 10_000))!
          const lifetime = (yield* store.lifetime(next))!
          expect(lifetime.createdAt).toBe(created)
          expect(lifetime.absoluteExpiresAt).toBe(created + 700)
          now = yield* storage.now
          expect(now + (yield* storage.ttl(next))).toBeLessThanOrEqual(created + 700 + storage.slack)
          expect(yield* store.listByReference("user_id", "bob")).toEqual([next])
        })
      )

      it.effect("the creation time is the store's: a write may not set it, nor unset it", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const id = yield* newSession(store, { a: "1" })
          const refused = yield* Effect.flip(store.set(id, { _created_at: "0" }))
          expect(refused).toBeInstanceOf(InvalidSessionData)
          expect((refused as InvalidSessionData).field).toBe("_created_at")
          expect(yield* Effect.flip(store.unset(id, ["_created_at"]))).toBeInstanceOf(InvalidSessionData)
          expect((yield* store.get(id))["_created_at"]).toMatch(/^\d+$/)
        })
      )
    })

    // A session written without controls (as v3 did) counts as created when first written with them.
    const legacy = uniquePrefix(`legacy-${name}`)
    layer(makeLayer({ prefix: legacy, references: ["user_id"], maxAge: 400 }))("a session written without controls", (it) => {
      it.effect("gets its creation time at its first write under absoluteMaxAge", () =>
        Effect.gen(function* () {
          const plain = yield* SessionStore
          const id = yield* newSession(plain, { user_id: "v3" })
          expect((yield* plain.get(id))["_created_at"]).toBeUndefined()
          expect((yield* plain.lifetime(id))!.createdAt).toBeUndefined()
          const storage = yield* Storage
          const before = yield* storage.now
          // Same keys, now with an absolute lifetime (a memory store shares nothing, so only Redis can show this).
          if (name === "memory") return
          const options = { prefix: legacy, references: ["user_id"], maxAge: 400, absoluteMaxAge: 700 }
          const createdAt = yield* Effect.gen(function* () {
            const controlled = yield* SessionStore.make(options)
            expect(yield* controlled.touch(id)).toBe(true)
            return (yield* controlled.lifetime(id))!.createdAt!
          }).pipe(Effect.provide(name === "cluster" ? RedisClusterTest : RedisTest), Effect.scoped)
          expect(createdAt).toBeGreaterThanOrEqual(before - storage.slack)
          expect((yield* plain.lifetime(id))!.createdAt).toBe(createdAt)
        })
      )
    })

    // ---- caps ----
    const capped = uniquePrefix(`cap-${name}`)
    const evictions: Array<SessionEviction> = []
    layer(
      makeLayer({
        prefix: capped,
        references: { user_id: { maxSessions: 2 }, team: {} },
        onEvict: (eviction) => {
          evictions.push(eviction)
        }
      })
    )("maxSessions", (it) => {
      it.effect("a third session of a value evicts exactly the least recently active, with all its references", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const storage = yield* Storage
          evictions.length = 0
          const first = yield* newSession(store, { user_id: "cat", team: "red" })
          yield* storage.wait(5)
          const second = yield* newSession(store, { user_id: "cat" })
          yield* storage.wait(5)
          // The first is now the most recently active one.
          expect(yield* store.touch(first)).toBe(true)
          yield* storage.wait(5)
          const third = yield* newSession(store, { user_id: "cat" })
          expect(yield* storage.hasSession(second)).toBe(false)
          expect(yield* storage.hasSession(first)).toBe(true)
          expect(yield* storage.members("user_id", "cat")).toEqual([first, third].sort())
          expect(evictions).toEqual([{ field: "user_id", value: "cat", evicted: 1 }])
          yield* storage.wait(5)
          // A value joined by a change of value counts too; the evicted one leaves every set.
          const other = yield* newSession(store, { user_id: "dog", team: "red" })
          yield* store.set(other, { user_id: "cat" })
          expect(yield* storage.hasSession(first)).toBe(false)
          expect(yield* storage.members("team", "red")).toEqual([other])
          expect(yield* storage.members("user_id", "cat")).toEqual([other, third].sort())
          expect(yield* storage.members("user_id", "dog")).toEqual([])
          expect(evictions).toHaveLength(2)
        })
      )

      it.effect("writes that keep a value, expired sessions and other values never count against the cap", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const storage = yield* Storage
          evictions.length = 0
          const a = yield* newSession(store, { user_id: "eve" })
          yield* storage.wait(5)
          const b = yield* newSession(store, { user_id: "eve" })
          for (let i = 0; i < 3; i++) yield* store.set(a, { n: String(i) })
          yield* storage.expire(b)
          yield* storage.wait(5)
          const c = yield* newSession(store, { user_id: "eve" })
          yield* newSession(store, { user_id: "fay" })
          expect(evictions).toEqual([])
          expect(yield* store.listByReference("user_id", "eve").pipe(Effect.map((ids) => ids.sort()))).toEqual([a, c].sort())
        })
      )
    })

    // ---- rolling reads ----
    const rolling = uniquePrefix(`roll-${name}`)
    // An interval long enough for a burst of reads on a loaded machine (a cluster renewal is up to three round trips).
    layer(makeLayer({ prefix: rolling, references: ["user_id"], maxAge: 6000, rolling: true, rollingInterval: 1500 }))("rolling", (it) => {
      it.effect("a read renews the idle lifetime at most once per interval; SessionStore.get never does", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const storage = yield* Storage
          const id = yield* newSession(store, { user_id: "gus" })
          // Within the interval of the write: nothing is due.
          expect((yield* read(store, id)).renewedTtl).toBeUndefined()
          yield* storage.wait(1600)
          yield* store.get(id)
          expect(yield* storage.ttl(id)).toBeLessThan(4500)
          const renewals: Array<number | undefined> = []
          for (let i = 0; i < 5; i++) renewals.push((yield* read(store, id)).renewedTtl)
          expect(renewals.filter((ttl) => ttl !== undefined)).toHaveLength(1)
          expect(renewals[0]).toBeGreaterThan(5500)
          const seen = (yield* store.get(id))["_last_seen_at"]
          yield* storage.wait(100)
          for (let i = 0; i < 5; i++) expect((yield* read(store, id)).renewedTtl).toBeUndefined()
          // The burst wrote once: the last-seen time is the first read's.
          expect((yield* store.get(id))["_last_seen_at"]).toBe(seen)
          expect(yield* storage.ttl(id)).toBeLessThan(5950)
          // The data is answered as a get answers it.
          expect((yield* read(store, id, ["user_id"])).session).toEqual({ id, user_id: "gus" })
        })
      )

      it.effect("a read of a missing or revoked session renews nothing and answers {}", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const id = yield* newSession(store, { user_id: "hal" })
          expect(yield* store.deleteByReference("user_id", "hal")).toBe(1)
          expect(yield* read(store, id)).toEqual({ session: {}, renewedTtl: undefined })
        })
      )
    })

    // ---- the session list, tracking, revoke-others ----
    const listed = uniquePrefix(`list-${name}`)
    layer(
      makeLayer({ prefix: listed, references: ["user_id"], maxAge: 60_000, absoluteMaxAge: 120_000, track: { userAgent: true, ip: true } })
    )("listSessions", (it) => {
      it.effect("lists each live session with its times and device, in reserved fields of the hash only", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const storage = yield* Storage
          const phone = yield* store.createSessionId
          yield* toEffect(
            backendOf(store).redis,
            backendOf(store).actions.set(phone, { user_id: "ivy" }, undefined, { userAgent: "Phone/1", ip: "10.0.0.1" })
          )
          const laptop = yield* newSession(store, { user_id: "ivy" })
          const gone = yield* newSession(store, { user_id: "ivy" })
          yield* storage.expire(gone)
          const sessions = yield* listAll(store, "user_id", "ivy")
          expect(sessions.map((s) => s.id).sort()).toEqual([laptop, phone].sort())
          const info = sessions.find((s) => s.id === phone)!
          expect(info.userAgent).toBe("Phone/1")
          expect(info.ip).toBe("10.0.0.1")
          expect(info.absoluteExpiresAt).toBe(info.createdAt! + 120_000)
          expect(info.lastSeenAt).toBeGreaterThanOrEqual(info.createdAt!)
          expect(info.expiresAt!).toBeGreaterThan(info.lastSeenAt! + 50_000)
          expect(sessions.find((s) => s.id === laptop)!.userAgent).toBeUndefined()
          // A user agent is the client's to choose: a long one is cut.
          yield* toEffect(
            backendOf(store).redis,
            backendOf(store).actions.set(laptop, { a: "1" }, undefined, { userAgent: "x".repeat(5000) })
          )
          expect((yield* store.get(laptop))["_user_agent"]).toHaveLength(512)
          expect(yield* Effect.flip(store.set(laptop, { _user_agent: "forged" }))).toBeInstanceOf(InvalidSessionData)
        })
      )

      it.effect("pages through more sessions than one page holds, each live one once", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const ids = yield* Effect.all(
            Array.from({ length: 620 }, () => newSession(store, { user_id: "jim" })),
            { concurrency: 20 }
          )
          const sessions = yield* listAll(store, "user_id", "jim")
          expect(sessions.map((s) => s.id).sort()).toEqual([...ids].sort())
        })
      )

      it.effect("deleteByReference with except spares exactly that session, which stays writable and referenced", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          const storage = yield* Storage
          const ids = yield* Effect.all(Array.from({ length: 4 }, () => newSession(store, { user_id: "kim" })))
          const keep = ids[2]!
          expect(yield* store.deleteByReference("user_id", "kim", { except: keep })).toBe(3)
          expect(yield* storage.members("user_id", "kim")).toEqual([keep])
          for (const id of ids) expect(yield* storage.hasSession(id)).toBe(id === keep)
          expect(yield* store.setExisting(keep, { a: "2" })).toBe(true)
          expect(yield* store.listByReference("user_id", "kim")).toEqual([keep])
          expect(yield* storage.ttl(keep)).toBeGreaterThan(50_000)
          // Without except, it goes too.
          expect(yield* store.deleteByReference("user_id", "kim")).toBe(1)
          expect(yield* storage.hasSession(keep)).toBe(false)
        })
      )

      it.effect("lifetime of a missing session is undefined; a bad except id is refused", () =>
        Effect.gen(function* () {
          const store = yield* SessionStore
          expect(yield* store.lifetime(yield* store.createSessionId)).toBeUndefined()
          const exit = yield* Effect.exit(store.deleteByReference("user_id", "kim", { except: "no" }))
          expect(Exit.isFailure(exit)).toBe(true)
        })
      )
    })
  })
}

for (const [name, makeLayer] of BACKENDS) suite(name, makeLayer)

describe("account control options", () => {
  const refused = (options: SessionStoreOptions) =>
    Effect.flip(SessionStore.makeMemory(options)).pipe(Effect.map((error) => (error as SessionConfigError).option))

  it.effect("bad values fail with SessionConfigError naming the option", () =>
    Effect.gen(function* () {
      expect(yield* refused({ maxAge: 1000, absoluteMaxAge: 999 })).toBe("absoluteMaxAge")
      expect(yield* refused({ references: { user_id: { maxSessions: 0 } } })).toBe("references.user_id.maxSessions")
      expect(yield* refused({ references: { user_id: { maxSessions: 1.5 } } })).toBe("references.user_id.maxSessions")
      expect(yield* refused({ references: { user_id: { maxSessions: "5" as never } } })).toBe("references.user_id.maxSessions")
      expect(yield* refused({ references: { user_id: { maxSesions: 5 } as never } })).toBe("references.user_id.maxSesions")
      expect(yield* refused({ maxAge: 1000, rollingInterval: 1000 })).toBe("rollingInterval")
      expect(yield* refused({ track: { userAgent: true, device: true } as never })).toBe("track.device")
      expect(yield* refused({ track: true as never })).toBe("track")
      expect(yield* refused({ rolling: "yes" as never })).toBe("rolling")
      expect(yield* refused({ onEvict: 1 as never })).toBe("onEvict")
    })
  )

  it.effect("without controls, underscore fields are the app's, as in v3", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore.makeMemory({ references: ["user_id"] })
      const id = yield* store.createSessionId
      yield* store.set(id, { _created_at: "mine", user_id: "x" })
      expect(yield* store.get(id)).toEqual({ id, _created_at: "mine", user_id: "x" })
    })
  )
})
