// The in-memory backend: Redis's semantics (expiry, regenerate, an exact reference index)
// driven by TestClock, with memory that stays bounded, and the rules' errors.
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream, TestClock, TestContext } from "effect"
import fc from "fast-check"
import { InvalidSessionData, InvalidSessionId, SessionConfigError } from "../src/SessionError.js"
import { makeMemoryStore, memoryStats, type MemoryStats } from "../src/internal/store/memory.js"
import type { Action } from "../src/internal/store/action.js"
import { makeRules, resolveOptions, SCAN_BATCH, type StoreRules } from "../src/internal/store/plan.js"
import { runPromise, toEffect } from "../src/internal/store/run.js"
import { backendOf } from "../src/internal/store/service.js"
import type { SessionStoreOptions, SessionStoreService } from "../src/internal/store/types.js"

const rulesFor = (options: SessionStoreOptions): StoreRules => {
  const resolved = resolveOptions(options)
  if (resolved instanceof SessionConfigError) throw resolved
  return makeRules(resolved)
}

const makeStore = (options: SessionStoreOptions = { references: ["user_id"] }) => makeMemoryStore(rulesFor(options))

const statsOf = (store: SessionStoreService): MemoryStats => {
  const stats = memoryStats(store)
  if (stats === undefined) throw new Error("not a memory store")
  return stats
}

const A = "a".repeat(24)
const B = "b".repeat(24)
const C = "c".repeat(24)

describe("memory store: expiry through Clock", () => {
  it.effect("a session with maxAge 1000 is there at 999 ms and gone, with its reference membership, at 1000", () =>
    Effect.gen(function* () {
      const store = makeStore()
      yield* store.set(A, { user_id: "u1", name: "x" }, 1000)
      yield* TestClock.adjust(999)
      expect(yield* store.get(A)).toEqual({ id: A, user_id: "u1", name: "x" })
      expect(yield* store.listByReference("user_id", "u1")).toEqual([A])
      yield* TestClock.adjust(1)
      expect(yield* store.listByReference("user_id", "u1")).toEqual([])
      expect(yield* store.get(A)).toEqual({})
      expect(statsOf(store)).toEqual({ sessions: 0, referenceSets: 0, heapEntries: 0 })
    })
  )

  it.effect("touch, set and unset reset the lifetime; touch/unset of a missing session create nothing", () =>
    Effect.gen(function* () {
      const store = makeStore()
      yield* store.set(A, { user_id: "u1" }, 1000)
      yield* TestClock.adjust(600)
      expect(yield* store.touch(A, 1000)).toBe(true)
      yield* TestClock.adjust(600) // t = 1200, past the first lifetime
      expect(yield* store.get(A, ["user_id"])).toEqual({ id: A, user_id: "u1" })
      yield* store.set(A, { name: "y" }, 1000)
      yield* TestClock.adjust(900) // t = 2100
      expect(yield* store.unset(A, ["name"], 1000)).toBe(true)
      yield* TestClock.adjust(999) // t = 3099
      expect(yield* store.get(A)).toEqual({ id: A, user_id: "u1" })
      yield* TestClock.adjust(1)
      expect(yield* store.get(A)).toEqual({})
      expect(yield* store.touch(A)).toBe(false)
      expect(yield* store.unset(A, ["user_id"])).toBe(false)
      expect(yield* store.setExisting(A, { user_id: "u2" })).toBe(false)
      expect(statsOf(store).sessions).toBe(0)
    })
  )

  it.effect("the store's maxAge is the default lifetime (and a falsy per-call maxAge means it)", () =>
    Effect.gen(function* () {
      const store = makeStore({ maxAge: 5000 })
      yield* store.set(A, { n: 1 })
      yield* store.set(B, { n: 2 }, 0)
      yield* TestClock.adjust(4999)
      expect(Object.keys(yield* store.get(B))).toContain("n")
      yield* TestClock.adjust(1)
      expect([yield* store.get(A), yield* store.get(B)]).toEqual([{}, {}])
    })
  )
})

describe("memory store: operations", () => {
  it.effect("set moves a changed referenced value; unset and delete remove it; deleteByReference counts", () =>
    Effect.gen(function* () {
      const store = makeStore()
      yield* store.set(A, { user_id: 1 })
      yield* store.set(B, { user_id: 1 })
      yield* store.set(C, { user_id: 2 })
      expect((yield* store.listByReference("user_id", 1)).sort()).toEqual([A, B])
      yield* store.set(A, { user_id: 2 })
      expect((yield* store.listByReference("user_id", 2)).sort()).toEqual([A, C])
      expect(yield* store.unset(C, ["user_id"])).toBe(true)
      expect(yield* store.get(C)).toEqual({ id: C })
      expect(yield* store.delete(B)).toBe(true)
      expect(yield* store.delete(B)).toBe(false)
      expect(yield* store.listByReference("user_id", 1)).toEqual([])
      expect(yield* store.setExisting(C, { user_id: 2 })).toBe(true)
      expect(yield* store.deleteByReference("user_id", 2)).toBe(2)
      expect([yield* store.get(A), yield* store.get(C)]).toEqual([{}, {}])
      expect(statsOf(store)).toMatchObject({ sessions: 0, referenceSets: 0 })
    })
  )

  it.effect("regenerate keeps the remaining lifetime and rotates the CSRF secret only when there is one", () =>
    Effect.gen(function* () {
      const store = makeStore()
      yield* store.set(A, { user_id: "u1", _csrf_secret: "old" }, 1000)
      yield* store.set(B, { user_id: "u1" }, 1000)
      yield* TestClock.adjust(400)
      const regenerated = yield* toEffect(undefined, backendOf(store).actions.regenerate(A, C, undefined, { csrfSecret: "new" }))
      expect(regenerated).toEqual({ id: C, ttl: 600 })
      expect(yield* store.get(C)).toEqual({ id: C, user_id: "u1", _csrf_secret: "new" })
      expect(yield* store.get(A)).toEqual({})
      expect((yield* store.listByReference("user_id", "u1")).sort()).toEqual([B, C])

      const fresh = yield* store.regenerate(B)
      expect(fresh).toMatch(/^[A-Za-z0-9_-]{24}$/)
      expect(yield* store.get(fresh!)).toEqual({ id: fresh, user_id: "u1" })

      yield* TestClock.adjust(599)
      expect((yield* store.listByReference("user_id", "u1")).length).toBe(2)
      yield* TestClock.adjust(1)
      expect(yield* store.listByReference("user_id", "u1")).toEqual([])
      expect(yield* store.regenerate(C)).toBeUndefined()
    })
  )

  it.effect("regenerate with a maxAge gives that lifetime; onto a live id it fails and changes nothing", () =>
    Effect.gen(function* () {
      const store = makeStore()
      yield* store.set(A, { user_id: "u1" }, 1000)
      yield* store.set(B, { user_id: "u2" }, 1000)
      const error = yield* Effect.flip(store.regenerate(A, B))
      expect(error).toEqual(new InvalidSessionId({ reason: "the new id is already in use" }))
      expect(yield* store.get(A)).toEqual({ id: A, user_id: "u1" })
      expect(yield* store.get(B)).toEqual({ id: B, user_id: "u2" })

      expect(yield* toEffect(undefined, backendOf(store).actions.regenerate(A, C, 5000))).toEqual({ id: C, ttl: 5000 })
      yield* TestClock.adjust(4999)
      expect(yield* store.listByReference("user_id", "u1")).toEqual([C])
      yield* TestClock.adjust(1)
      expect(yield* store.get(C)).toEqual({})
    })
  )

  it.effect("fields named __proto__ round-trip as own properties; results are copies", () =>
    Effect.gen(function* () {
      const store = makeStore()
      const values = JSON.parse('{"__proto__":"p","constructor":"c","user_id":"u"}') as Record<string, string>
      yield* store.set(A, values)
      for (const got of [yield* store.get(A), yield* store.get(A, ["__proto__", "constructor"])]) {
        expect(Object.getPrototypeOf(got)).toBe(Object.prototype)
        expect(Object.hasOwn(got, "__proto__")).toBe(true)
        expect(Object.keys(got)).toContain("__proto__")
        expect(Object.getOwnPropertyDescriptor(got, "__proto__")?.value).toBe("p")
        expect(got["constructor"]).toBe("c")
      }
      const got = yield* store.get(A)
      got["user_id"] = "changed"
      delete got["id"]
      expect(yield* store.get(A, ["user_id"])).toEqual({ id: A, user_id: "u" })
      expect(yield* store.unset(A, ["__proto__"])).toBe(true)
      expect(Object.hasOwn(yield* store.get(A), "__proto__")).toBe(false)
    })
  )

  it.effect("validation errors are the rules' errors", () =>
    Effect.gen(function* () {
      const rules = rulesFor({ references: ["user_id"] })
      const store = makeMemoryStore(rules)
      const bad = "not an id"
      const cases: ReadonlyArray<[Effect.Effect<unknown, unknown>, unknown]> = [
        [store.get(bad), rules.get(bad)],
        [store.get(A, ["ok", ""]), rules.get(A, ["ok", ""])],
        [store.set(bad, {}), rules.write(bad, {}, undefined)],
        [store.set(A, { id: "x" }), rules.write(A, { id: "x" }, undefined)],
        [store.setExisting(A, { n: Number.NaN }), rules.write(A, { n: Number.NaN }, undefined)],
        [store.set(A, {}, -5), rules.write(A, {}, -5)],
        [store.unset(A, ["id"]), rules.unset(A, ["id"], undefined)],
        [store.touch(bad), rules.touch(bad, undefined)],
        [store.delete(bad), rules.delete(bad)],
        [store.regenerate(A, A), rules.regenerate(A, A, undefined, undefined)],
        [store.regenerate(A, bad), rules.regenerate(A, bad, undefined, undefined)],
        [store.listByReference("name", "x"), rules.reference("name", "x")],
        [store.deleteByReference("user_id", Number.POSITIVE_INFINITY), rules.reference("user_id", Number.POSITIVE_INFINITY)]
      ]
      for (const [effect, expected] of cases) {
        const error = yield* Effect.flip(effect)
        expect(error).toBeInstanceOf(expected instanceof InvalidSessionId ? InvalidSessionId : InvalidSessionData)
        expect(error).toEqual(expected)
      }
      expect(yield* Effect.flip(store.get(bad))).toEqual(
        new InvalidSessionId({ reason: "must be 16 to 128 characters of A-Z a-z 0-9 _ - + / =" })
      )
      expect(statsOf(store)).toEqual({ sessions: 0, referenceSets: 0, heapEntries: 0 })
    })
  )

  it("runs through the Promise runner too (the facade's path), on the real clock", async () => {
    const store = makeStore()
    const { actions } = backendOf(store)
    await runPromise(undefined, actions.set(A, { user_id: "u1" }))
    expect(await runPromise(undefined, actions.get(A))).toEqual({ id: A, user_id: "u1" })
    await expect(runPromise(undefined, actions.get("bad"))).rejects.toBeInstanceOf(InvalidSessionId)
    expect(memoryStats(store)).toMatchObject({ sessions: 1 })
  })
})

describe("memory store: bounded memory", () => {
  it.effect("expired sessions and their reference sets are removed by the next operation", () =>
    Effect.gen(function* () {
      const store = makeStore()
      for (let i = 0; i < 1000; i++) yield* store.set(`session-${String(i).padStart(8, "0")}`, { user_id: i % 10 }, 1000)
      expect(statsOf(store)).toEqual({ sessions: 1000, referenceSets: 10, heapEntries: 1000 })
      yield* TestClock.adjust(1000)
      expect(statsOf(store).sessions).toBe(1000) // removed by an operation, not by a timer
      yield* store.get(A)
      expect(statsOf(store)).toEqual({ sessions: 0, referenceSets: 0, heapEntries: 0 })
    })
  )

  it.effect("a session written 10 000 times keeps the heap O(1); deleted sessions leave it too", () =>
    Effect.gen(function* () {
      const store = makeStore()
      for (let i = 0; i < 10_000; i++) {
        yield* store.set(A, { user_id: i % 3 })
        expect(statsOf(store).heapEntries).toBeLessThanOrEqual(20)
      }
      expect(statsOf(store)).toMatchObject({ sessions: 1, referenceSets: 1 })
      for (let i = 0; i < 1000; i++) yield* store.set(`session-${String(i).padStart(8, "0")}`, { user_id: "u" })
      expect(yield* store.deleteByReference("user_id", "u")).toBe(1000)
      yield* store.touch(A)
      expect(statsOf(store)).toEqual({ sessions: 1, referenceSets: 1, heapEntries: expect.any(Number) })
      expect(statsOf(store).heapEntries).toBeLessThanOrEqual(20)
    })
  )
})

// ---- account controls (issue 13), on the Clock ----

const actionsOf = (store: SessionStoreService) => backendOf(store).actions
const run = <A, E>(action: Action<A, E>) => toEffect(undefined, action)
const sid = (i: number) => `session-${String(i).padStart(8, "0")}`

describe("memory store: absolute lifetime", () => {
  it.effect("an active session dies exactly at creation + absoluteMaxAge, with its reference membership", () =>
    Effect.gen(function* () {
      const store = makeStore({ references: ["user_id"], maxAge: 1000, absoluteMaxAge: 3000 })
      yield* TestClock.adjust(10_000) // created at t = 10 000: the deadline is 13 000
      yield* store.set(A, { user_id: "u1" })
      // Active every 500 ms: the idle lifetime never runs out.
      for (let t = 10_500; t < 13_000; t += 500) {
        yield* TestClock.adjust(500)
        yield* store.set(A, { n: t })
      }
      yield* TestClock.adjust(499) // t = 12 999
      expect(yield* store.get(A, ["user_id"])).toEqual({ id: A, user_id: "u1" })
      expect(yield* store.lifetime(A)).toEqual({ createdAt: 10_000, expiresAt: 13_000, absoluteExpiresAt: 13_000 })
      yield* TestClock.adjust(1)
      expect(yield* store.get(A)).toEqual({})
      expect(yield* store.listByReference("user_id", "u1")).toEqual([])
      expect(yield* store.lifetime(A)).toBeUndefined()
      expect(yield* store.setExisting(A, { n: 1 })).toBe(false)
      // A set after the deadline creates a new session under the id, with a new deadline.
      yield* store.set(A, { user_id: "u1" })
      expect(yield* store.lifetime(A)).toEqual({ createdAt: 13_000, expiresAt: 14_000, absoluteExpiresAt: 16_000 })
    })
  )

  it.effect("touch, set, unset, regenerate and a rolling read near the deadline do not extend past it", () =>
    Effect.gen(function* () {
      const store = makeStore({ references: ["user_id"], maxAge: 1000, absoluteMaxAge: 2000, rolling: true, rollingInterval: 100 })
      yield* store.set(A, { user_id: "u1" }) // deadline 2000
      yield* TestClock.adjust(900)
      expect(yield* store.touch(A, 1000)).toBe(true)
      expect((yield* store.lifetime(A))?.expiresAt).toBe(1900)
      yield* TestClock.adjust(900) // t = 1800
      expect(yield* store.touch(A, 1000)).toBe(true)
      expect((yield* store.lifetime(A))?.expiresAt).toBe(2000)
      yield* store.set(A, { n: 1 }, 5000)
      expect(yield* store.unset(A, ["n"], 5000)).toBe(true)
      expect((yield* store.lifetime(A))?.expiresAt).toBe(2000)
      yield* TestClock.adjust(100) // t = 1900: a read is due
      const read = yield* run(actionsOf(store).read(A, undefined, undefined))
      expect(read.renewedTtl).toBe(100)
      // The deadline follows the data to its new id, whatever lifetime is asked for.
      expect(yield* run(actionsOf(store).regenerate(A, B, 5000))).toEqual({ id: B, ttl: 100 })
      expect(yield* store.lifetime(B)).toEqual({ createdAt: 0, expiresAt: 2000, absoluteExpiresAt: 2000 })
      yield* TestClock.adjust(99)
      expect(yield* store.listByReference("user_id", "u1")).toEqual([B])
      yield* TestClock.adjust(1)
      expect(yield* store.get(B)).toEqual({})
      expect(yield* store.touch(B)).toBe(false)
      expect(statsOf(store)).toMatchObject({ sessions: 0, referenceSets: 0 })
    })
  )

  it.effect("without controls a session holds only the app's fields (v3's layout) and has no creation time", () =>
    Effect.gen(function* () {
      const store = makeStore({ references: ["user_id"], maxAge: 1000 })
      yield* store.set(A, { user_id: "u1" })
      yield* store.touch(A)
      yield* run(actionsOf(store).read(A, undefined, { userAgent: "ua", ip: "1.2.3.4" }))
      expect(yield* store.get(A)).toEqual({ id: A, user_id: "u1" })
      expect(yield* store.lifetime(A)).toEqual({ expiresAt: 1000 })
    })
  )
})

describe("memory store: per-value caps", () => {
  it.effect("a write that gives a value one session too many evicts exactly the least recently active, and the index stays exact", () =>
    Effect.gen(function* () {
      const evictions: Array<unknown> = []
      const store = makeStore({
        references: { user_id: { maxSessions: 3 }, team: {} },
        onEvict: (eviction) => {
          evictions.push(eviction)
          throw new Error("ignored")
        }
      })
      // Written at t = 0, 10, 20; C is active again at t = 30, A at t = 40: B is the least recent.
      for (const [i, id] of [A, B, C].entries()) {
        yield* TestClock.adjust(i === 0 ? 0 : 10)
        yield* store.set(id, { user_id: "u1", team: "t" })
      }
      // Rewriting a value a session holds already joins nothing: no eviction.
      yield* TestClock.adjust(10)
      yield* store.set(C, { user_id: "u1" })
      yield* TestClock.adjust(10)
      yield* store.touch(A)
      expect(evictions).toEqual([])
      yield* TestClock.adjust(10)
      const D = "d".repeat(24)
      yield* store.set(D, { user_id: "u1" })
      expect(evictions).toEqual([{ field: "user_id", value: "u1", evicted: 1 }])
      expect(yield* store.get(B)).toEqual({})
      expect((yield* store.listByReference("user_id", "u1")).sort()).toEqual([A, C, D])
      // Evicted with all its references.
      expect((yield* store.listByReference("team", "t")).sort()).toEqual([A, C])
      // Moving a session to a full value evicts there: C (t = 30) is now the least recent of u1.
      yield* store.set(B, { user_id: "u2" })
      yield* store.set(B, { user_id: "u1" })
      expect(evictions).toEqual([
        { field: "user_id", value: "u1", evicted: 1 },
        { field: "user_id", value: "u1", evicted: 1 }
      ])
      expect((yield* store.listByReference("user_id", "u1")).sort()).toEqual([A, B, D])
      expect(yield* store.listByReference("team", "t")).toEqual([A])
      expect(statsOf(store)).toMatchObject({ sessions: 3, referenceSets: 2 })
    })
  )

  it.effect("ties in last activity evict the smaller id; other values are not counted", () =>
    Effect.gen(function* () {
      const store = makeStore({ references: { user_id: { maxSessions: 2 } } })
      yield* store.set(C, { user_id: "u1" })
      yield* store.set(A, { user_id: "u1" })
      yield* store.set(B, { user_id: "u2" })
      yield* store.set(sid(1), { user_id: "u1" })
      expect((yield* store.listByReference("user_id", "u1")).sort()).toEqual([C, sid(1)])
      expect(yield* store.listByReference("user_id", "u2")).toEqual([B])
    })
  )
})

describe("memory store: Session reads", () => {
  it.effect("a rolling read renews the idle lifetime at most once per rollingInterval", () =>
    Effect.gen(function* () {
      const store = makeStore({ references: ["user_id"], maxAge: 1000, rolling: true, rollingInterval: 100 })
      yield* store.set(A, { user_id: "u1" })
      const renewals: Array<number | undefined> = []
      // A read every 30 ms for 600 ms: due at 120, 240, 360, 480, 600 (100 ms after the last update).
      for (let t = 30; t <= 600; t += 30) {
        yield* TestClock.adjust(30)
        const { session, renewedTtl } = yield* run(actionsOf(store).read(A, ["user_id"], undefined))
        expect(session).toEqual({ id: A, user_id: "u1" })
        renewals.push(renewedTtl)
        if (renewedTtl !== undefined) expect(yield* store.lifetime(A)).toMatchObject({ expiresAt: t + 1000 })
      }
      expect(renewals.flatMap((ttl, i) => (ttl === undefined ? [] : [(i + 1) * 30]))).toEqual([120, 240, 360, 480, 600])
      expect(renewals.filter((ttl) => ttl !== undefined)).toEqual([1000, 1000, 1000, 1000, 1000])
      expect(yield* store.get(A, ["_last_seen_at"])).toEqual({ id: A, _last_seen_at: "600" })
      // store.get never writes, so it renews nothing.
      yield* TestClock.adjust(999)
      expect(yield* store.get(A)).toMatchObject({ id: A })
      yield* TestClock.adjust(1)
      expect(yield* store.get(A)).toEqual({})
    })
  )

  it.effect("a rolling read never shortens a longer lifetime; a tracked read records the client once per interval", () =>
    Effect.gen(function* () {
      const store = makeStore({
        references: ["user_id"],
        maxAge: 1000,
        rolling: true,
        rollingInterval: 100,
        track: { userAgent: true, ip: true }
      })
      const actions = actionsOf(store)
      yield* run(actions.set(A, { user_id: "u1" }, 5000, { userAgent: "first", ip: "10.0.0.1" }))
      yield* TestClock.adjust(100)
      expect((yield* run(actions.read(A, ["user_id"], { userAgent: "second", ip: "10.0.0.2" }))).renewedTtl).toBe(4900)
      yield* TestClock.adjust(50)
      yield* run(actions.read(A, ["user_id"], { userAgent: "third" }))
      expect(yield* store.get(A)).toEqual({
        id: A,
        user_id: "u1",
        _created_at: "0",
        _last_seen_at: "100",
        _user_agent: "second",
        _ip: "10.0.0.2"
      })
      const listed = yield* Stream.runCollect(store.listSessions("user_id", "u1"))
      expect(Chunk.toArray(listed)).toEqual([
        { id: A, createdAt: 0, lastSeenAt: 100, expiresAt: 5000, userAgent: "second", ip: "10.0.0.2" }
      ])
      // No session: nothing is created.
      expect(yield* run(actions.read(B, undefined, { userAgent: "x" }))).toEqual({ session: {}, renewedTtl: undefined })
      expect(statsOf(store).sessions).toBe(1)
    })
  )
})

describe("memory store: revocation and the session list", () => {
  it.effect("revoke-others keeps exactly the current session, with its data and references", () =>
    Effect.gen(function* () {
      const store = makeStore({ references: ["user_id", "team"] })
      for (const id of [A, B, C, sid(1)]) yield* store.set(id, { user_id: "u1", team: "t" })
      yield* store.set(sid(2), { user_id: "u2" })
      expect(yield* store.deleteByReference("user_id", "u1", { except: B })).toBe(3)
      expect(yield* store.get(B)).toEqual({ id: B, user_id: "u1", team: "t" })
      expect(yield* store.listByReference("user_id", "u1")).toEqual([B])
      expect(yield* store.listByReference("team", "t")).toEqual([B])
      expect(yield* store.listByReference("user_id", "u2")).toEqual([sid(2)])
      // An except that is not a holder spares nothing else.
      expect(yield* store.deleteByReference("user_id", "u1", { except: sid(2) })).toBe(1)
      expect(statsOf(store)).toMatchObject({ sessions: 1, referenceSets: 1 })
    })
  )

  it.effect("deleteHolding deletes a session only while its field holds the value", () =>
    Effect.gen(function* () {
      const store = makeStore()
      yield* store.set(A, { user_id: "u1" })
      expect(yield* run(actionsOf(store).deleteHolding(A, "user_id", "u2"))).toBe(false)
      expect(yield* run(actionsOf(store).deleteHolding(B, "user_id", "u1"))).toBe(false)
      expect(yield* store.get(A)).toEqual({ id: A, user_id: "u1" })
      expect(yield* run(actionsOf(store).deleteHolding(A, "user_id", "u1"))).toBe(true)
      expect(yield* store.get(A)).toEqual({})
      expect(statsOf(store)).toMatchObject({ sessions: 0, referenceSets: 0 })
    })
  )

  it.effect("listSessions over more than a page lists each live session once, while sessions come and go between pages", () =>
    Effect.gen(function* () {
      const store = makeStore({ references: ["user_id"], maxAge: 1000, absoluteMaxAge: 5000 })
      const count = 2 * SCAN_BATCH + 7
      for (let i = 0; i < count; i++) yield* store.set(sid(i), { user_id: "u1" })
      const stream = Chunk.toArray(yield* Stream.runCollect(store.listSessions("user_id", "u1")))
      expect(stream.map((s) => s.id).sort()).toEqual(Array.from({ length: count }, (_, i) => sid(i)))
      expect(stream[0]).toEqual({ id: sid(0), createdAt: 0, lastSeenAt: 0, expiresAt: 1000, absoluteExpiresAt: 5000 })

      // Page by page, changing the set between pages: an early member rejoins (it leaves and comes
      // back), members are deleted before and after the cursor, new ones join.
      const pages: Array<ReadonlyArray<string>> = []
      let cursor = "0"
      const changed = new Set([sid(0), sid(10), sid(SCAN_BATCH + 5), sid(count - 1), sid(count)])
      do {
        const page = yield* run(actionsOf(store).listSessionsPage("user_id", "u1", cursor))
        expect(page.sessions.length).toBeLessThanOrEqual(SCAN_BATCH)
        pages.push(page.sessions.map((s) => s.id))
        cursor = page.cursor
        if (pages.length === 1) {
          yield* store.set(sid(0), { user_id: "u2" })
          yield* store.set(sid(0), { user_id: "u1" })
          yield* store.delete(sid(10))
          yield* store.delete(sid(SCAN_BATCH + 5))
          yield* store.delete(sid(count - 1))
          yield* store.set(sid(count), { user_id: "u1" })
        }
      } while (cursor !== "0")
      expect(pages.length).toBeGreaterThanOrEqual(3)
      const listed = pages.flat()
      const steady = Array.from({ length: count }, (_, i) => sid(i)).filter((id) => !changed.has(id))
      expect(listed.filter((id) => !changed.has(id)).sort()).toEqual(steady)
      expect(listed.filter((id) => id === sid(SCAN_BATCH + 5) || id === sid(count - 1))).toEqual([])
      const times = (id: string) => listed.filter((listedId) => listedId === id).length
      // Listed before it was deleted; the new one at most once; the one that left and rejoined
      // (a new membership) on the first page and perhaps again.
      expect(times(sid(10))).toBe(1)
      expect(times(sid(count))).toBeLessThanOrEqual(1)
      expect(times(sid(0))).toBeGreaterThanOrEqual(1)
    })
  )
})

// ---- the reference index against a model, over random sequences ----

const VALUES = ["1", "2", "3"] as const
const FIELDS = ["user_id", "name"] as const
const SLOTS = 3
const DEFAULT_MAX_AGE = 3000
const MAX_AGES = [undefined, 1000, 2000] as const

type Op =
  | { readonly op: "set"; readonly slot: number; readonly values: Record<string, string>; readonly maxAge: number | undefined }
  | { readonly op: "unset"; readonly slot: number; readonly fields: Array<string> }
  | { readonly op: "delete"; readonly slot: number }
  | { readonly op: "regenerate"; readonly slot: number; readonly onto: number | undefined; readonly maxAge: number | undefined }
  | { readonly op: "revoke"; readonly value: string }
  | { readonly op: "advance"; readonly millis: number }

const slot = fc.integer({ min: 0, max: SLOTS - 1 })
const maxAge = fc.constantFrom(...MAX_AGES)
const value = fc.constantFrom(...VALUES)
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("set" as const),
      slot,
      values: fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 2 }),
      maxAge
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("unset" as const), slot, fields: fc.uniqueArray(fc.constantFrom(...FIELDS), { minLength: 1 }) })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), slot }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("regenerate" as const),
      slot,
      onto: fc.option(slot, { nil: undefined, freq: 2 }),
      // Mostly none: the remaining lifetime is kept.
      maxAge: fc.constantFrom(undefined, undefined, 2000)
    })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("revoke" as const), value }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("advance" as const), millis: fc.constantFrom(1, 300, 999, 1000, 2500) }) }
)

interface ModelSession {
  readonly fields: Record<string, string>
  expiresAt: number
}

const runSequence = (ops: ReadonlyArray<Op>) =>
  Effect.gen(function* () {
    const store = makeStore({ references: ["user_id"], maxAge: DEFAULT_MAX_AGE })
    const ids = Array.from({ length: SLOTS }, (_, i) => `slot${i}`.padEnd(20, "x"))
    const model = new Map<string, ModelSession>()
    let now = 0
    let fresh = 0
    const live = (id: string) => {
      const session = model.get(id)
      if (session !== undefined && session.expiresAt <= now) model.delete(id)
      return model.get(id)
    }
    for (const op of ops) {
      switch (op.op) {
        case "set": {
          const id = ids[op.slot]!
          yield* store.set(id, op.values, op.maxAge)
          model.set(id, { fields: { ...live(id)?.fields, ...op.values, id }, expiresAt: now + (op.maxAge ?? DEFAULT_MAX_AGE) })
          break
        }
        case "unset": {
          const id = ids[op.slot]!
          const session = live(id)
          expect(yield* store.unset(id, op.fields)).toBe(session !== undefined)
          if (session === undefined) break
          for (const field of op.fields) delete session.fields[field]
          session.expiresAt = now + DEFAULT_MAX_AGE
          break
        }
        case "delete": {
          const id = ids[op.slot]!
          expect(yield* store.delete(id)).toBe(live(id) !== undefined)
          model.delete(id)
          break
        }
        case "regenerate": {
          const id = ids[op.slot]!
          const target = op.onto === undefined ? `fresh${fresh++}`.padEnd(20, "y") : ids[op.onto]!
          const result = yield* Effect.either(store.regenerate(id, target, op.maxAge))
          // The new id, undefined (no session), or the failure's reason.
          const outcome = Either.isLeft(result) ? (result.left as InvalidSessionId).reason : result.right
          const session = live(id)
          if (target === id) expect(outcome).toBe("the new id must differ from the old one")
          else if (session === undefined) expect(outcome).toBeUndefined()
          else if (live(target) !== undefined) expect(outcome).toBe("the new id is already in use")
          else {
            expect(outcome).toBe(target)
            model.delete(id)
            const expiresAt = op.maxAge === undefined ? session.expiresAt : now + op.maxAge
            model.set(target, { fields: { ...session.fields, id: target }, expiresAt })
            ids[op.slot] = target
          }
          break
        }
        case "revoke": {
          const holders = [...model.keys()].filter((id) => live(id)?.fields["user_id"] === op.value)
          expect(yield* store.deleteByReference("user_id", op.value)).toBe(holders.length)
          for (const id of holders) model.delete(id)
          break
        }
        case "advance":
          yield* TestClock.adjust(op.millis)
          now += op.millis
      }
      // After every step: each value's set is exactly the live sessions holding it.
      for (const v of VALUES) {
        const expected = [...model.keys()].filter((id) => live(id)?.fields["user_id"] === v).sort()
        expect((yield* store.listByReference("user_id", v)).sort()).toEqual(expected)
      }
      for (const id of new Set([...ids, ...model.keys()])) expect(yield* store.get(id)).toEqual(live(id)?.fields ?? {})
      const stats = statsOf(store)
      const liveValues = new Set([...model.keys()].flatMap((id) => live(id)?.fields["user_id"] ?? []))
      expect(stats).toMatchObject({ sessions: model.size, referenceSets: liveValues.size })
      expect(stats.heapEntries).toBeLessThanOrEqual(2 * model.size + 17)
    }
  })

describe("memory store: the reference index is exact", () => {
  it("after each step of random set/unset/delete/regenerate/revoke/clock sequences, listByReference equals the model", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 50 }), (ops) =>
        Effect.runPromise(runSequence(ops).pipe(Effect.provide(TestContext.TestContext)))
      ),
      { numRuns: 200 }
    )
  })
})
