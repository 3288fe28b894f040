// @ts-check
// An @effect/platform HTTP server with sessions from koa-redis-session-sets/http, served by
// plain `node:http` (no @effect/platform-node needed). Cookies are signed as a Koa app with
// `app.keys = [COOKIE_SECRET]` signs them, so both can share one Redis.
//   REDIS_URL=redis://127.0.0.1:6379 COOKIE_SECRET=... PORT=3001 node examples/http-server.mjs
//   (without REDIS_URL: an in-process memory store)
import { createServer } from "node:http"
import { HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Layer } from "effect"
import { RedisClient, Session, SessionStore } from "koa-redis-session-sets"
import { SessionHttp } from "koa-redis-session-sets/http"

const storeOptions = { namespace: "myapp", references: { user_id: {} } }
const redisUrl = process.env.REDIS_URL
const store = redisUrl
  ? SessionStore.layer(storeOptions).pipe(Layer.provide(RedisClient.layer(redisUrl)))
  : SessionStore.layerMemory(storeOptions)
// Where the sessions live, without the URL's credentials.
const where = redisUrl ? `Redis at ${new URL(redisUrl).hostname}:${new URL(redisUrl).port || "6379"}` : "memory store"

const currentUser = Effect.gen(function* () {
  const session = yield* Session
  // Never send the whole session back: its `id` is the credential, `_csrf_secret` a secret.
  const { user_id = null } = yield* session.get(["user_id"])
  return user_id === null ? null : String(user_id)
})

const me = Effect.map(currentUser, (user_id) => HttpServerResponse.unsafeJson({ user_id }))

const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/login",
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const user = new URL(request.url, "http://localhost").searchParams.get("user")
      if (!user) return HttpServerResponse.unsafeJson({ error: "give ?user=<name>" }, { status: 400 })
      const session = yield* Session
      yield* session.regenerate // a new id at login: no session fixation
      yield* session.set({ user_id: user })
      return yield* me
    })
  ),
  HttpRouter.get("/me", me),
  HttpRouter.get(
    "/logout",
    Effect.gen(function* () {
      yield* (yield* Session).delete
      return yield* me
    })
  ),
  HttpRouter.get(
    "/logout-everywhere",
    Effect.gen(function* () {
      const user = yield* currentUser
      // Every session of this user, on every device, this one included.
      const revoked = user === null ? 0 : yield* (yield* SessionStore).deleteByReference("user_id", user)
      yield* (yield* Session).delete // and clear this client's cookie
      return HttpServerResponse.unsafeJson({ user_id: null, revoked })
    })
  ),
  SessionHttp.middleware({ keys: [process.env.COOKIE_SECRET ?? "replace with a long random secret"] })
)

const { handler, dispose } = HttpApp.toWebHandlerLayer(app, store)
const server = createServer(SessionHttp.toNodeListener(handler))
server.listen(Number(process.env.PORT ?? 3001), "127.0.0.1", () => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : process.env.PORT
  console.log(`listening on http://127.0.0.1:${port}, sessions in ${where}`)
})

const stop = () => {
  server.close()
  server.closeAllConnections()
  dispose().then(() => process.exit(0))
}
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
