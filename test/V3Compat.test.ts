import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SessionStore } from "../src/SessionStore.js"
import { pttls, raw, Raw, realSleep, StoreTest, uniquePrefix } from "./utils.js"

const prefix = uniquePrefix("v3")

// Exactly what v3's Store.set sent: MULTI [HMSET key id sid ...fields] [PEXPIRE key ms] [SADD prefix:field:value sid].
const writeLikeV3 = (id: string, values: Record<string, string>, maxAge = 60_000) =>
  raw((c) =>
    c
      .multi([
        ["hmset", `${prefix}:${id}`, "id", id, ...Object.entries(values).flat()],
        ["pexpire", `${prefix}:${id}`, maxAge],
        ...Object.entries(values)
          .filter(([field]) => field === "user_id")
          .map(([field, value]) => ["sadd", `${prefix}:${field}:${value}`, id])
      ])
      .exec()
  )

layer(StoreTest({ prefix, references: { user_id: {} } }))("v3 data", (it) => {
  it.effect("a session written by v3 is read back, updated and deleted cleanly", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const client = yield* Raw
      const id = "Qk9CQk9CQk9CQk9CQk9CQk9C" // 18 bytes of base64, like v3's ids
      yield* writeLikeV3(id, { user_id: "1", name: "v3", _csrf_secret: "s" })
      expect(yield* store.get(id)).toEqual({ id, user_id: "1", name: "v3", _csrf_secret: "s" })
      expect(yield* store.get(id, ["name"])).toEqual({ id, name: "v3" })
      expect(yield* store.listByReference("user_id", 1)).toEqual([id])

      // v3's reference sets have no TTL: we leave them persistent (they outlive every member).
      yield* store.set(id, { name: "v4" })
      expect((yield* pttls(client, [`${prefix}:user_id:1`]))[0]).toBe(-1)

      yield* store.set(id, { user_id: 2 })
      expect(yield* raw((c) => c.exists(`${prefix}:user_id:1`))).toBe(0)
      expect(yield* raw((c) => c.smembers(`${prefix}:user_id:2`))).toEqual([id])
      expect(yield* store.delete(id)).toBe(true)
      expect(yield* raw((c) => c.exists(`${prefix}:${id}`, `${prefix}:user_id:2`))).toBe(0)
    })
  )

  it.effect("a v3 set shared by v3 and v4 sessions keeps working with SMEMBERS", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const old = "T0xET0xET0xET0xET0xET0xE"
      yield* writeLikeV3(old, { user_id: "5" })
      const fresh = yield* store.createSessionId
      yield* store.set(fresh, { user_id: 5 })
      const members = yield* raw((c) => c.smembers(store.getReferenceKey("user_id", 5)))
      expect(members.sort()).toEqual([old, fresh].sort())
      expect(yield* store.deleteByReference("user_id", 5)).toBe(2)
      expect(yield* store.get(old)).toEqual({})
    })
  )

  it.effect("sessions expire by their TTL and listByReference prunes them", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const short = yield* store.createSessionId
      const long = yield* store.createSessionId
      yield* store.set(short, { user_id: 77 }, 100)
      yield* store.set(long, { user_id: 77 }, 60_000)
      yield* realSleep(300)
      expect(yield* store.get(short)).toEqual({})
      expect(yield* store.listByReference("user_id", 77)).toEqual([long])
      expect(yield* raw((c) => c.smembers(store.getReferenceKey("user_id", 77)))).toEqual([long])
    })
  )

  it.effect("when every member expires, the reference set expires too", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const a = yield* store.createSessionId
      const b = yield* store.createSessionId
      yield* store.set(a, { user_id: 78 }, 150)
      yield* store.set(b, { user_id: 78 }, 250)
      yield* realSleep(500)
      expect(yield* raw((c) => c.exists(store.getReferenceKey("user_id", 78)))).toBe(0)
    })
  )
})
