// @ts-check
// A backend job: revoke every session of a user, e.g. after a password reset.
//   node examples/revoke-job.mjs 42
import { fileURLToPath } from "node:url"
import { Effect, Layer } from "effect"
import { RedisClient, SessionStore } from "koa-redis-session-sets"

export const revokeUser = (/** @type {number} */ userId) =>
  Effect.gen(function* () {
    const store = yield* SessionStore
    const revoked = yield* store.deleteByReference("user_id", userId)
    yield* Effect.logInfo("sessions revoked").pipe(Effect.annotateLogs({ revoked }))
    return revoked
  })

// Same options as the Koa app, so both see the same keys.
export const StoreLive = SessionStore.layer({ namespace: "myapp", references: ["user_id"] }).pipe(
  Layer.provide(RedisClient.layer(process.env.REDIS_URL ?? "redis://127.0.0.1:6379"))
)

// The layer connects on start and quits Redis when the program ends.
export const main = (/** @type {number} */ userId) => revokeUser(userId).pipe(Effect.provide(StoreLive))

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const userId = Number(process.argv[2])
  if (!Number.isInteger(userId)) throw new Error("usage: node examples/revoke-job.mjs <user id>")
  await Effect.runPromise(main(userId))
}
