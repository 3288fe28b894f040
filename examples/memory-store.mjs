// @ts-check
// The revoke job's logic tested without Redis: SessionStore.layerMemory keeps the same
// contract in this process, and TestClock drives its lifetimes.
//   node examples/memory-store.mjs
import { fileURLToPath } from "node:url"
import { Effect, TestClock, TestContext } from "effect"
import { SessionStore } from "koa-redis-session-sets"
import { revokeUser } from "./revoke-job.mjs"

export const check = Effect.gen(function* () {
  const store = yield* SessionStore
  const phone = yield* store.createSessionId
  const laptop = yield* store.createSessionId
  yield* store.set(phone, { user_id: 42 }, "1h")
  yield* store.set(laptop, { user_id: 42 }, "2h")
  yield* TestClock.adjust("90 minutes") // the phone's session has expired
  const live = yield* store.listByReference("user_id", 42)
  const revoked = yield* revokeUser(42)
  const left = yield* store.listByReference("user_id", 42)
  return { live: live.length, revoked, left: left.length }
}).pipe(
  Effect.provide(SessionStore.layerMemory({ namespace: "myapp", references: ["user_id"] })),
  Effect.provide(TestContext.TestContext)
)

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await Effect.runPromise(check)) // { live: 1, revoked: 1, left: 0 }
