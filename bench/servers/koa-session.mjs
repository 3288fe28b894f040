// (e) koa-session + koa-redis (its own ioredis 4 client). Defaults otherwise:
// no rolling, so a READ is one GET and no write; a WRITE is one SET (SETEX) of the
// whole JSON session. BENCH_SIGNED=1: signed cookies (koa-session's default);
// otherwise `signed: false`.
import Koa from "koa"
import redisStore from "koa-redis"
import session from "koa-session"
import { KEYS, MAX_AGE, nextLoginUser, nextWriteUser, PROFILE, REDIS_URL, serve, SIGNED } from "./common.mjs"

const store = redisStore({ url: REDIS_URL })
store.client.on("error", () => {})
const app = new Koa()
app.keys = KEYS
app.use(session({ store, key: "koa.sess", maxAge: MAX_AGE, signed: SIGNED, sameSite: "lax" }, app))

app.use(async (ctx) => {
  switch (ctx.path) {
    case "/read":
      ctx.body = ctx.session.toJSON()
      return
    case "/write":
      ctx.session.user_id = nextWriteUser()
      ctx.body = "ok"
      return
    case "/login":
      Object.assign(ctx.session, { user_id: nextLoginUser(), ...PROFILE })
      ctx.body = "ok"
      return
  }
})

serve(app.callback(), () => store.client.quit())
