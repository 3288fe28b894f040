// The in-memory backend: Redis's semantics (expiry, regenerate, an exact reference index)
// driven by TestClock, with memory that stays bounded, and the rules' errors.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, TestClock, TestContext } from "effect"
import fc from "fast-check"
import { InvalidSessionData, InvalidSessionId, SessionConfigError } from "../src/SessionError.js"
import { makeMemoryStore, memoryStats, type MemoryStats } from "../src/internal/store/memory.js"
import { makeRules, resolveOptions, type StoreRules } from "../src/internal/store/plan.js"
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
    }))

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
    }))

  it.effect("the store's maxAge is the default lifetime (and a falsy per-call maxAge means it)", () =>
    Effect.gen(function* () {
      const store = makeStore({ maxAge: 5000 })
      yield* store.set(A, { n: 1 })
      yield* store.set(B, { n: 2 }, 0)
      yield* TestClock.adjust(4999)
      expect(Object.keys(yield* store.get(B))).toContain("n")
      yield* TestClock.adjust(1)
      expect([yield* store.get(A), yield* store.get(B)]).toEqual([{}, {}])
    }))
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
    }))

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
    }))

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
    }))

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
    }))

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
      expect(yield* Effect.flip(store.get(bad))).toEqual(new InvalidSessionId({ reason: "must be 16 to 128 characters of A-Z a-z 0-9 _ - + / =" }))
      expect(statsOf(store)).toEqual({ sessions: 0, referenceSets: 0, heapEntries: 0 })
    }))

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
    }))

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
    }))
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
  { weight: 4, arbitrary: fc.record({ op: fc.constant("set" as const), slot, values: fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 2 }), maxAge }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("unset" as const), slot, fields: fc.uniqueArray(fc.constantFrom(...FIELDS), { minLength: 1 }) }) },
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
