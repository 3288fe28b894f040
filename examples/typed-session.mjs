// @ts-check
// Typed session fields with effect Schema: numbers and literals in and out, strings in
// Redis (v3's layout), a refused value writes nothing.
//   node examples/typed-session.mjs
import { fileURLToPath } from "node:url"
import { Effect, Schema } from "effect"
import { SessionSchema, SessionStore } from "koa-redis-session-sets"

export const UserSession = SessionSchema.make({
  user_id: Schema.NumberFromString,
  role: Schema.Literal("admin", "user")
})

export const demo = Effect.gen(function* () {
  const untyped = yield* SessionStore
  const store = yield* UserSession.sessionStore
  const id = yield* untyped.createSessionId
  yield* store.set(id, { user_id: 42, role: "admin" })
  const typed = yield* store.get(id) // { id, user_id: 42, role: "admin" }
  const stored = yield* untyped.get(id) // as Redis holds it: { id, user_id: "42", role: "admin" }
  const holders = yield* store.listByReference("user_id", 42)
  // A value the schema refuses (from code that got around the types) writes nothing.
  const refused = yield* Effect.flip(store.set(id, { role: /** @type {"admin"} */ (/** @type {unknown} */ ("root")) }))
  return { typed, stored, holders: holders.length, refused: refused._tag, after: (yield* store.get(id)).role }
}).pipe(Effect.provide(SessionStore.layerMemory({ references: ["user_id"] })))

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await Effect.runPromise(demo))
