// (c) koa-redis-session-sets through the v3 Promise facade, from the built package (dist/).
// BENCH_SIGNED=1: default signed cookies (app.keys set); otherwise `signed: false`.
import { libraryApp, nextLoginUser, nextWriteUser, PROFILE, serve } from "./common.mjs"

const { app, close } = await libraryApp()

app.use(async (ctx) => {
  switch (ctx.path) {
    case "/read":
      ctx.body = await ctx.session.get()
      return
    case "/write":
      await ctx.session.set({ user_id: nextWriteUser() })
      ctx.body = "ok"
      return
    case "/login":
      await ctx.session.set({ user_id: nextLoginUser(), ...PROFILE })
      ctx.body = "ok"
      return
  }
})

serve(app.callback(), close)
