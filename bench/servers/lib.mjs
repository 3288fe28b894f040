// (c) koa-redis-session-sets through the v3 Promise facade, from the built package (dist/).
// BENCH_SIGNED=1: default signed cookies (app.keys set); otherwise `signed: false`.
import { Redis } from "ioredis"
import Koa from "koa"
import { importLibrary, KEYS, nextLoginUser, nextWriteUser, PREFIX, PROFILE, REDIS_URL, serve, SIGNED } from "./common.mjs"

const { default: KoaRedisSessionSets } = await importLibrary()

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

serve(app.callback(), async () => {
  await SessionMiddleware.close()
  await client.quit()
})
