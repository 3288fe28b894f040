// The two @effect/platform apps of the platform pair, as web handlers over a caller's
// ioredis client: served over HTTP by platform-raw.mjs / platform-lib.mjs, and called
// in-process by bench/platform-ab.mjs. Same routes as every stack (see common.mjs).
import { HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, ManagedRuntime } from "effect"
import { importLibrary } from "../lib/library.mjs"
import { MAX_AGE, nextLoginUser, nextWriteUser, PREFIX, PROFILE, rawLogin } from "./common.mjs"

const { RedisClient, Session, SessionStore } = await importLibrary()
const COOKIE = "session-id"
const BASE = `${PREFIX}:`
const hashKey = (id) => `${PREFIX}:{${id}}`
const storeLayer = (client) =>
  SessionStore.layer({ prefix: PREFIX, references: { user_id: {} } }).pipe(Layer.provide(RedisClient.layerFromClient(client)))

/**
 * The library's own write script, as the store sends it for `set({ user_id })` on an
 * existing session (what /write does): its SHA (loaded in Redis by that very call) and
 * the argument layout, checked. The ceiling's WRITE sends exactly this EVALSHA, so the
 * pair differs only in the JavaScript around it, not in the work Redis does.
 */
export const libraryWriteScript = async (client) => {
  const runtime = ManagedRuntime.make(storeLayer(client))
  try {
    const store = await runtime.runPromise(SessionStore)
    const id = await runtime.runPromise(store.createSessionId)
    await runtime.runPromise(store.set(id, { user_id: 1 }))
    let captured
    client.evalsha = (...a) => {
      captured = a.map(String)
      return Object.getPrototypeOf(client).evalsha.apply(client, a)
    }
    await runtime.runPromise(store.setExisting(id, { user_id: 2 }))
    delete client.evalsha
    await runtime.runPromise(store.delete(id))
    // id, ttl, only existing, no controls, no absolute lifetime, 1 reference (no cap), the pair.
    const expected = ["2", hashKey(id), BASE, id, String(store.maxAgeMillis), "1", "0", "-1", "1", "user_id", "0", "user_id", "2"]
    if (captured === undefined || JSON.stringify(captured.slice(1)) !== JSON.stringify(expected)) {
      throw new Error(`SessionStore.setExisting sent ${JSON.stringify(captured)}, not the layout the ceiling copies`)
    }
    return captured[0]
  } finally {
    await runtime.dispose()
  }
}

const sessionIdOf = Effect.map(HttpServerRequest.HttpServerRequest, (request) => request.cookies[COOKIE])
// The ceiling's /read: one HGETALL of the hash the cookie names.
const rawRead = (client) =>
  Effect.gen(function* () {
    const id = yield* sessionIdOf
    const session = id === undefined ? {} : yield* Effect.promise(() => client.hgetall(hashKey(id)))
    return HttpServerResponse.unsafeJson(session)
  })

/**
 * (e) The ceiling: raw ioredis in a platform router. READ one HGETALL of the hash named by
 * the cookie (platform's own cookie parsing); WRITE one EVALSHA of the library's setSession
 * script with the arguments the library sends, then the refreshed cookie (platform's
 * setCookie); /login one MULTI (rawLogin).
 */
export const rawHandler = async (client) => {
  const writeSha = await libraryWriteScript(client)
  const cookieOptions = () => ({ httpOnly: true, sameSite: "lax", path: "/", expires: new Date(Date.now() + MAX_AGE) })
  const withCookie = (response, id) => HttpServerResponse.setCookie(response, COOKIE, id, cookieOptions())
  const app = HttpRouter.empty.pipe(
    HttpRouter.get("/read", rawRead(client)),
    HttpRouter.get(
      "/write",
      Effect.gen(function* () {
        const id = yield* sessionIdOf
        if (id === undefined) return HttpServerResponse.text("no session", { status: 400 })
        const value = String(nextWriteUser())
        const written = yield* Effect.promise(() =>
          client.evalsha(writeSha, 2, hashKey(id), BASE, id, MAX_AGE, "1", "0", -1, 1, "user_id", 0, "user_id", value)
        )
        if (written !== 1) return HttpServerResponse.text("no session", { status: 400 })
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
  return { handler: HttpApp.toWebHandler(app), dispose: async () => {} }
}

/**
 * (f) The same routes with the ./http middleware (signed: false, as the ceiling) over a
 * SessionStore. `read: "raw"` (platform-ab's --lib-read raw) serves /read with the
 * ceiling's own HGETALL inside the middleware, so the pair measures what the middleware
 * alone costs a request, apart from Session.get.
 */
export const libHandler = (SessionHttp, client, { read = "session" } = {}) => {
  const app = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/read",
      read === "raw"
        ? rawRead(client)
        : Effect.map(
            Effect.flatMap(Session, (session) => session.get()),
            (data) => HttpServerResponse.unsafeJson(data)
          )
    ),
    HttpRouter.get(
      "/write",
      Effect.as(
        Effect.flatMap(Session, (session) => session.set({ user_id: nextWriteUser() })),
        HttpServerResponse.text("ok")
      )
    ),
    HttpRouter.get(
      "/login",
      Effect.as(
        Effect.flatMap(Session, (session) => session.set({ user_id: nextLoginUser(), ...PROFILE })),
        HttpServerResponse.text("ok")
      )
    ),
    SessionHttp.middleware({ signed: false })
  )
  return HttpApp.toWebHandlerLayer(app, storeLayer(client))
}
