// @ts-check
// Account controls: an idle lifetime that rolls with activity, an absolute one that does
// not, at most 5 sessions per user, and a device list the user can prune.
import Koa from "koa"
import { Redis } from "ioredis"
import KoaRedisSessionSets from "koa-redis-session-sets"

const client = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")
client.on("error", (error) => console.error("Redis:", error.message))

const app = new Koa()
app.keys = [process.env.COOKIE_SECRET ?? "replace with a long random secret"]

const SessionMiddleware = KoaRedisSessionSets(app, {
  client,
  namespace: "myapp",
  maxAge: "2 hours", // idle timeout
  rolling: true, // reads keep an active user signed in (at most one write per 12 minutes)
  absoluteMaxAge: "12 hours", // then sign in again, however active
  references: { user_id: { maxSessions: 5 } }, // a sixth sign-in ends the least recently active
  track: { userAgent: true, ip: true }, // for the device list
  onEvict: ({ evicted }) => console.log(`signed out ${evicted} old session(s)`)
})

app.use(SessionMiddleware)

app.use(async (ctx) => {
  const session = ctx.session
  if (ctx.path === "/login") {
    await session.regenerate()
    await session.set({ user_id: String(ctx.query.user) })
    ctx.body = { csrf: await session.createCSRFToken() }
    return
  }
  // Every other change is a POST carrying the CSRF token.
  if (ctx.method === "POST" && !(await session.verifyCSRFToken(ctx.get("x-csrf-token")))) ctx.throw(403)
  if (ctx.method === "POST" && ctx.path === "/sessions/revoke") {
    ctx.body = { revoked: await session.revokeSession(ctx.query.handle) }
  } else if (ctx.method === "POST" && ctx.path === "/sessions/revoke-others") {
    ctx.body = { revoked: await session.revokeOthers("user_id") }
  } else if (ctx.path === "/sessions") {
    // Each device: { handle, current, createdAt, lastSeenAt, expiresAt, absoluteExpiresAt, userAgent, ip }
    ctx.body = { sessions: await session.listSessions("user_id"), lifetime: await session.lifetime() }
  } else ctx.throw(404)
})

export const server = app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1")
export { SessionMiddleware, client }
