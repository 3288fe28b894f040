// (a) Bare Koa, no Redis: the HTTP + Koa floor every other stack pays too.
import Koa from "koa"
import { nextLoginUser, nextWriteUser, PROFILE, serve } from "./common.mjs"

const app = new Koa()
const session = { id: "AAAAAAAAAAAAAAAAAAAAAAAA", user_id: String(nextLoginUser()), ...PROFILE }

app.use(async (ctx) => {
  switch (ctx.path) {
    case "/read":
      ctx.body = session
      return
    case "/write":
      session.user_id = String(nextWriteUser())
      ctx.body = "ok"
      return
    case "/login":
      ctx.body = "ok"
      return
  }
})

serve(app.callback())
