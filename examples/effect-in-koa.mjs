// @ts-check
// Effect handlers inside a Koa app: SessionMiddleware.run(ctx, effect) provides the
// request's Session (the Effect twin of ctx.session), the SessionStore and the RedisClient.
//   node examples/effect-in-koa.mjs   then   curl -c jar -b jar 127.0.0.1:3000/login
import { Effect } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import KoaRedisSessionSets, { Session, SessionStore } from "koa-redis-session-sets"

const client = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")
client.on("error", (error) => console.error("Redis:", error.message))

const app = new Koa()
app.keys = [process.env.COOKIE_SECRET ?? "replace with a long random secret"]
const SessionMiddleware = KoaRedisSessionSets(app, { client, namespace: "myapp", references: { user_id: {} } })
app.use(SessionMiddleware)

const currentUser = Effect.gen(function* () {
  const session = yield* Session
  const { user_id = null } = yield* session.get(["user_id"])
  return { user_id }
})

const login = (/** @type {number} */ userId) =>
  Effect.gen(function* () {
    const session = yield* Session
    yield* session.regenerate
    yield* session.set({ user_id: userId })
    return yield* currentUser
  })

// Sign this user out on every device, this one included.
const logoutEverywhere = Effect.gen(function* () {
  const { user_id } = yield* currentUser
  if (user_id === null) return { revoked: 0 }
  const store = yield* SessionStore
  return { revoked: yield* store.deleteByReference("user_id", user_id) }
})

app.use(async (ctx) => {
  // Each rejects with the typed error itself (RedisError → 503, InvalidSessionData → 400).
  if (ctx.path === "/login") ctx.body = await SessionMiddleware.run(ctx, login(1))
  else if (ctx.path === "/logout-everywhere") ctx.body = await SessionMiddleware.run(ctx, logoutEverywhere)
  else ctx.body = await SessionMiddleware.run(ctx, currentUser)
})

export const server = app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1")
export { SessionMiddleware, client }
