// (d) koa-redis-session-sets through the Effect-in-Koa call:
// SessionMiddleware.run(ctx, Effect.gen(function* () { const s = yield* Session; ... })).
// BENCH_SIGNED=1: default signed cookies (app.keys set); otherwise `signed: false`.
import { Effect } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import { importLibrary, KEYS, nextLoginUser, nextWriteUser, PREFIX, PROFILE, REDIS_URL, serve, SIGNED } from "./common.mjs"

const { default: KoaRedisSessionSets, Session } = await importLibrary()

const client = new Redis(REDIS_URL)
client.on("error", () => {})
const app = new Koa()
if (SIGNED) app.keys = KEYS
const SessionMiddleware = KoaRedisSessionSets(app, {
  client,
  prefix: PREFIX,
  references: { user_id: {} },
  ...(SIGNED ? {} : { signed: false })
})
app.use(SessionMiddleware)

app.use(async (ctx) => {
  switch (ctx.path) {
    case "/read":
      ctx.body = await SessionMiddleware.run(
        ctx,
        Effect.gen(function* () {
          const session = yield* Session
          return yield* session.get()
        })
      )
      return
    case "/write":
      await SessionMiddleware.run(
        ctx,
        Effect.gen(function* () {
          const session = yield* Session
          yield* session.set({ user_id: nextWriteUser() })
        })
      )
      ctx.body = "ok"
      return
    case "/login":
      await SessionMiddleware.run(
        ctx,
        Effect.gen(function* () {
          const session = yield* Session
          yield* session.set({ user_id: nextLoginUser(), ...PROFILE })
        })
      )
      ctx.body = "ok"
      return
  }
})

serve(app.callback(), async () => {
  await SessionMiddleware.close()
  await client.quit()
})
