import Koa from "koa"
import { Redis } from "ioredis"
import KoaRedisSessionSets from "koa-redis-session-sets"

const client = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")

const app = new Koa()
app.keys = [process.env.COOKIE_SECRET ?? "replace with a long random secret"]

const Session = KoaRedisSessionSets(app, {
  client,
  namespace: "myapp",
  references: { user_id: {} }
})

app.use(Session)

app.use(async (ctx) => {
  if (ctx.path === "/login") {
    await ctx.session.regenerate() // a new id at login: no session fixation
    await ctx.session.set({ user_id: 1 })
  } else if (ctx.path === "/logout") {
    await ctx.session.delete()
  }
  ctx.body = await ctx.session.get() // never writes: anonymous visitors cost nothing
})

// After a password reset: sign the user out everywhere, in one call.
export const signOutEverywhere = (userId) => Session.store.deleteByReference("user_id", userId)

export const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? "127.0.0.1")
export { Session, client }
