// @ts-check
// Plain ESM: save as app.mjs (or set "type": "module" in package.json), then `node app.mjs`.
import Koa from "koa"
import { Redis } from "ioredis"
import KoaRedisSessionSets from "koa-redis-session-sets"

const client = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")
// Without a listener ioredis prints every failed reconnect; meanwhile requests fail with 503.
client.on("error", (error) => console.error("Redis:", error.message))

const app = new Koa()
app.keys = [process.env.COOKIE_SECRET ?? "replace with a long random secret"]
// Behind a proxy that terminates TLS, trust its X-Forwarded-Proto so cookies get `Secure`:
// app.proxy = true

const SessionMiddleware = KoaRedisSessionSets(app, {
  client,
  namespace: "myapp",
  references: { user_id: {} }
})

app.use(SessionMiddleware)

app.use(async (ctx) => {
  if (ctx.path === "/login") {
    await ctx.session.regenerate() // a new id at login: no session fixation
    await ctx.session.set({ user_id: 1 })
  } else if (ctx.path === "/logout") {
    await ctx.session.delete()
  }
  // Never send the whole session back: its `id` is the credential, `_csrf_secret` a secret.
  const { user_id = null } = await ctx.session.get(["user_id"]) // never writes
  ctx.body = { user_id }
})

// After a password reset: sign the user out everywhere, in one call.
export const signOutEverywhere = (/** @type {number} */ userId) => SessionMiddleware.store.deleteByReference("user_id", userId)

export const server = app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1")
export { SessionMiddleware, client }
