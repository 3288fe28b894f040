import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SessionStore } from "../src/SessionStore.js"
import { keysUnder, raw, Raw, StoreTest, uniquePrefix } from "./utils.js"

const prefix = uniquePrefix("invalid")
const GOOD_ID = "abcdefghijklmnopqrstuvwx"

type Store = SessionStore["Type"]
type Case = readonly [name: string, run: (store: Store) => Effect.Effect<unknown, { readonly _tag: string }>, tag: string]

const badIds: ReadonlyArray<unknown> = [
  "",
  "short",
  "a".repeat(129),
  "abcdefghijklmnop:x",
  "abcdefghijklmnop}{*",
  "abcdefghijklmnop\u0000",
  "abcdefghijklmnop\r\nSET x y",
  "ábcdefghijklmnopq",
  "abcdefghijklmnop qrs",
  undefined,
  null,
  42,
  {}
]

const idCases: ReadonlyArray<Case> = badIds.flatMap((id): ReadonlyArray<Case> => {
  const label = JSON.stringify(id) ?? String(id)
  const bad = id as string
  return [
    [`get ${label}`, (s) => s.get(bad), "InvalidSessionId"],
    [`set ${label}`, (s) => s.set(bad, { a: 1 }), "InvalidSessionId"],
    [`setExisting ${label}`, (s) => s.setExisting(bad, { a: 1 }), "InvalidSessionId"],
    [`unset ${label}`, (s) => s.unset(bad, ["a"]), "InvalidSessionId"],
    [`touch ${label}`, (s) => s.touch(bad), "InvalidSessionId"],
    [`delete ${label}`, (s) => s.delete(bad), "InvalidSessionId"],
    [`regenerate ${label}`, (s) => s.regenerate(bad), "InvalidSessionId"]
  ]
})

const badValues: ReadonlyArray<readonly [string, unknown]> = [
  ["an object", { nested: true }],
  ["an array", [1, 2]],
  ["null", null],
  ["undefined", undefined],
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["a function", () => 1],
  ["a symbol", Symbol("s")],
  ["a bigint", 1n],
  ["a value over 64 KiB", "x".repeat(64 * 1024 + 1)]
]

const dataCases: ReadonlyArray<Case> = [
  // A bad value next to good ones: nothing at all may be written.
  ...badValues.map(([name, value]): Case => [`set with ${name}`, (s) => s.set(GOOD_ID, { user_id: 1, ok: "yes", bad: value } as never), "InvalidSessionData"]),
  ["set of the id field", (s) => s.set(GOOD_ID, { id: "other" }), "InvalidSessionData"],
  ["set with an empty field name", (s) => s.set(GOOD_ID, { "": "x" }), "InvalidSessionData"],
  ["set with a control character in a field name", (s) => s.set(GOOD_ID, { "a\nb": "x" }), "InvalidSessionData"],
  ["set with a NUL in a field name", (s) => s.set(GOOD_ID, { "a\u0000": "x" }), "InvalidSessionData"],
  ["set with a 10 KB field name", (s) => s.set(GOOD_ID, { ["f".repeat(10_000)]: "x" }), "InvalidSessionData"],
  ["set with 10 000 fields", (s) => s.set(GOOD_ID, Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`f${i}`, i]))), "InvalidSessionData"],
  ["set with values that are not an object", (s) => s.set(GOOD_ID, "x" as never), "InvalidSessionData"],
  ["set with an array of values", (s) => s.set(GOOD_ID, ["x"] as never), "InvalidSessionData"],
  ["set with a bad maxAge", (s) => s.set(GOOD_ID, { a: 1 }, "soon"), "InvalidSessionData"],
  ["set with a negative maxAge", (s) => s.set(GOOD_ID, { a: 1 }, -1), "InvalidSessionData"],
  ["set with a maxAge over 1000 years", (s) => s.set(GOOD_ID, { a: 1 }, 1e17), "InvalidSessionData"],
  ["touch with a maxAge over 1000 years", (s) => s.touch(GOOD_ID, "1001 years"), "InvalidSessionData"],
  ["set with a lone surrogate in a value", (s) => s.set(GOOD_ID, { user_id: "\ud800" }), "InvalidSessionData"],
  ["set with a lone surrogate in a field name", (s) => s.set(GOOD_ID, { "a\udc00": "x" }), "InvalidSessionData"],
  ["deleteByReference of a lone surrogate", (s) => s.deleteByReference("user_id", "\udc00"), "InvalidSessionData"],
  ["unset of the id field", (s) => s.unset(GOOD_ID, ["id"]), "InvalidSessionData"],
  ["unset with a non-array", (s) => s.unset(GOOD_ID, "a" as never), "InvalidSessionData"],
  ["unset with a non-string field", (s) => s.unset(GOOD_ID, [1] as never), "InvalidSessionData"],
  ["get with a non-array", (s) => s.get(GOOD_ID, "a" as never), "InvalidSessionData"],
  ["get with an empty field", (s) => s.get(GOOD_ID, [""]), "InvalidSessionData"],
  ["touch with a bad maxAge", (s) => s.touch(GOOD_ID, "never"), "InvalidSessionData"],
  ["listByReference of an unreferenced field", (s) => s.listByReference("name", "x"), "InvalidSessionData"],
  ["deleteByReference with an object value", (s) => s.deleteByReference("user_id", {} as never), "InvalidSessionData"]
]

layer(StoreTest({ prefix, references: ["user_id"] }))("invalid input", (it) => {
  it.effect("every rule fails with its typed error and leaves Redis untouched", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const client = yield* Raw
      // An existing session, to show a bad write does not half-change it either.
      yield* store.set(GOOD_ID, { user_id: 1, keep: "me" })
      const before = (yield* keysUnder(client, prefix)).sort()
      const snapshot = yield* raw((c) => c.hgetall(store.getSessionKey(GOOD_ID)))
      for (const [name, run, tag] of [...idCases, ...dataCases]) {
        const error = yield* Effect.flip(run(store))
        expect(error._tag, name).toBe(tag)
        expect(error instanceof Error, name).toBe(true)
      }
      expect((yield* keysUnder(client, prefix)).sort()).toEqual(before)
      expect(yield* raw((c) => c.hgetall(store.getSessionKey(GOOD_ID)))).toEqual(snapshot)
      expect(yield* raw((c) => c.smembers(store.getReferenceKey("user_id", 1)))).toEqual([GOOD_ID])
    })
  )

  it.effect("v3 base64 ids with + / = are accepted", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const id = "ab+cd/efgh+ijkl/mnop=="
      yield* store.set(id, { a: 1 })
      expect(yield* store.get(id)).toEqual({ id, a: "1" })
      expect(yield* store.delete(id)).toBe(true)
    })
  )

  it.effect("values at the limits are accepted", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const id = yield* store.createSessionId
      const big = "é".repeat(32 * 1024) // exactly 64 KiB of UTF-8
      const many = Object.fromEntries(Array.from({ length: 998 }, (_, i) => [`f${i}`, i]))
      yield* store.set(id, { big, ...many, ["n".repeat(256)]: "long name" })
      const session = yield* store.get(id)
      expect(session["big"]).toBe(big)
      expect(session["f997"]).toBe("997")
      expect(Object.keys(session)).toHaveLength(1001)
      yield* store.unset(id, Object.keys(many))
      expect(Object.keys(yield* store.get(id)).sort()).toEqual(["big", "id", "n".repeat(256)].sort())
    })
  )
})
