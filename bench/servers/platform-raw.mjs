// (e) Raw ioredis in an @effect/platform handler: the ceiling of the ./http middleware.
// The same routes, key layout and Redis work as the Koa ceiling (ioredis-raw.mjs): READ is
// one HGETALL of the hash named by the cookie; WRITE one EVALSHA of the same minimal
// script, and the refreshed cookie (platform's own Set-Cookie) on every write. Served by
// the same node:http listener as the middleware's stack (SessionHttp.toNodeListener).
import { HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { importHttp } from "../lib/library.mjs"
import { MAX_AGE, nextWriteUser, PREFIX, RAW_WRITE_SCRIPT, rawLogin, REDIS_URL, serve } from "./common.mjs"

const { SessionHttp } = await importHttp()
const client = new Redis(REDIS_URL)
client.on("error", () => {})
const COOKIE = "session-id"
const hashKey = (id) => `${PREFIX}:{${id}}`
const writeSha = await client.script("LOAD", RAW_WRITE_SCRIPT)
const BASE = `${PREFIX}:`
const cookieOptions = () => ({ httpOnly: true, sameSite: "lax", path: "/", expires: new Date(Date.now() + MAX_AGE) })
const sessionId = Effect.map(HttpServerRequest.HttpServerRequest, (request) => request.cookies[COOKIE])
const withCookie = (response, id) => HttpServerResponse.setCookie(response, COOKIE, id, cookieOptions())

const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/read",
    Effect.gen(function* () {
      const id = yield* sessionId
      const session = id === undefined ? {} : yield* Effect.promise(() => client.hgetall(hashKey(id)))
      return HttpServerResponse.unsafeJson(session)
    })
  ),
  HttpRouter.get(
    "/write",
    Effect.gen(function* () {
      const id = yield* sessionId
      if (id === undefined) return HttpServerResponse.text("no session", { status: 400 })
      const value = String(nextWriteUser())
      yield* Effect.promise(() => client.evalsha(writeSha, 2, hashKey(id), BASE, id, value, MAX_AGE))
      return yield* withCookie(HttpServerResponse.text("ok"), id)
    })
  ),
  HttpRouter.get(
    "/login",
    Effect.gen(function* () {
      const { id } = yield* Effect.promise(() => rawLogin(client))
      return yield* withCookie(HttpServerResponse.text("ok"), id)
    })
  )
)

const handler = HttpApp.toWebHandler(app)
serve(SessionHttp.toNodeListener(handler), () => client.quit())
