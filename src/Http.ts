/**
 * `koa-redis-session-sets/http`: sessions for @effect/platform HTTP apps, sharing the
 * cookie (name, signature, attributes) and the store with the Koa bridge, so a Koa app
 * and an Effect app on the same Redis and keys share their sessions.
 *
 * @example
 * ```ts
 * import { HttpApp, HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 * import { RedisClient, Session, SessionStore } from "koa-redis-session-sets"
 * import { SessionHttp } from "koa-redis-session-sets/http"
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get("/me", Effect.gen(function* () {
 *     const session = yield* Session
 *     return yield* HttpServerResponse.json(yield* session.get(["user_id"]))
 *   })),
 *   SessionHttp.middleware({ keys: ["a secret"] })
 * )
 * const layer = SessionStore.layer({ references: { user_id: {} } }).pipe(Layer.provide(RedisClient.layer("redis://127.0.0.1:6379")))
 * const { handler } = HttpApp.toWebHandlerLayer(app, layer)
 * ```
 *
 * @since 4.0.0
 */
import { Cookies, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect } from "effect"
import * as Csrf from "./Csrf.js"
import type { HttpCookieSettings, SetCookieLine } from "./internal/http/cookie.js"
import { HttpCookie } from "./internal/http/cookie.js"
import type { SessionHttpOptions } from "./internal/http/options.js"
import { checkHttpOptions } from "./internal/http/options.js"
import { toNodeListener } from "./internal/http/node.js"
import { Session } from "./Session.js"
import { SessionConfigError } from "./SessionError.js"
import { SessionStore } from "./SessionStore.js"

export type { SessionHttpOptions, SigningKey } from "./internal/http/options.js"
export type { WebHandler } from "./internal/http/node.js"
export { toNodeListener }

/**
 * The middleware: wraps an `HttpApp` (a router, say) so that its handlers get the
 * request's `Session`, taking the `SessionStore` from the context.
 *
 * @since 4.0.0
 * @category models
 */
export type SessionHttpMiddleware = <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, Exclude<R, Session> | SessionStore>

// A Set-Cookie line as a platform Cookie: `serializeCookie` writes `name=valueEncoded`
// and nothing else when a cookie has no options, so the line goes out byte for byte.
// `value` stays the cookie's value, for code that reads `response.cookies`.
const rawCookie = (line: SetCookieLine): Cookies.Cookie => {
  const end = line.rest.indexOf(";")
  const value = end === -1 ? line.rest : line.rest.slice(0, end)
  const cookie = Cookies.unsafeMakeCookie(line.name, value)
  return Object.assign(Object.create(Object.getPrototypeOf(cookie) as object) as Cookies.Cookie, {
    name: line.name,
    value,
    valueEncoded: line.rest,
    options: undefined
  })
}

const applyLines = (response: HttpServerResponse.HttpServerResponse, lines: ReadonlyArray<SetCookieLine>) => {
  if (lines.length === 0) return response
  return HttpServerResponse.updateCookies(response, (cookies) => {
    const record: Record<string, Cookies.Cookie> = { ...cookies.cookies }
    for (const line of lines) {
      delete record[line.name]
      record[line.name] = rawCookie(line)
    }
    return Cookies.fromReadonlyRecord(record)
  })
}

// Per request: the services are read from the fiber's context at once (no generator), and
// the cookie lines go onto the handler's response when it returns. Only a failure needs the
// pre-response handler (so the cookie reaches the error response too: a handler that signs
// in and then fails still tells the client its new id), and only when there are lines: an
// `appendPreResponseHandler` on every request copies the fiber's FiberRefs, most of what
// the middleware itself costs.
const build =
  (cookie: HttpCookieSettings, csrf: Csrf.Csrf): SessionHttpMiddleware =>
  (app) =>
    Effect.withFiberRuntime((fiber) => {
      const context = fiber.currentContext
      const requestCookie = new HttpCookie(Context.unsafeGet(context, HttpServerRequest.HttpServerRequest), cookie)
      const session = Session.make(Context.unsafeGet(context, SessionStore), csrf, requestCookie)
      return Effect.matchCauseEffect(Effect.provideService(app, Session, session), {
        onSuccess: (response) => Effect.succeed(applyLines(response, requestCookie.lines)),
        onFailure: (cause) =>
          requestCookie.lines.length === 0
            ? Effect.failCause(cause)
            : Effect.zipRight(
                HttpApp.appendPreResponseHandler((_request, response) => Effect.sync(() => applyLines(response, requestCookie.lines))),
                Effect.failCause(cause)
              )
      })
    })

/**
 * The middleware, as an Effect that fails with `SessionConfigError` for invalid options.
 *
 * @since 4.0.0
 * @category constructors
 */
export const make = (options: SessionHttpOptions = {}): Effect.Effect<SessionHttpMiddleware, SessionConfigError> =>
  Effect.suspend(() => {
    const checked = checkHttpOptions(options)
    return checked instanceof SessionConfigError ? Effect.fail(checked) : Effect.succeed(build(checked.cookie, Csrf.make(checked.csrf)))
  })

/**
 * The middleware. Throws `SessionConfigError` at once for invalid options, as the Koa
 * factory does.
 *
 * @since 4.0.0
 * @category middleware
 */
export const middleware = (options: SessionHttpOptions = {}): SessionHttpMiddleware => {
  const checked = checkHttpOptions(options)
  if (checked instanceof SessionConfigError) throw checked
  return build(checked.cookie, Csrf.make(checked.csrf))
}

/**
 * Everything in this module, as one value: `SessionHttp.middleware(options)`.
 *
 * @since 4.0.0
 * @category middleware
 */
export const SessionHttp = { middleware, make, toNodeListener } as const
