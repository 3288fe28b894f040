// (d) koa-redis-session-sets through the Effect-in-Koa call:
// SessionMiddleware.run(ctx, Effect.gen(function* () { const s = yield* Session; ... })).
// BENCH_SIGNED=1: default signed cookies (app.keys set); otherwise `signed: false`.
import { Effect } from "effect"
import { libraryApp, nextLoginUser, nextWriteUser, PROFILE, serve } from "./common.mjs"

const { app, library, SessionMiddleware, close } = await libraryApp()
const { Session } = library

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

serve(app.callback(), close)
