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
import { Cookies, HttpApiMiddleware, HttpApp, HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Context, Effect, FiberRef, Layer, Option } from "effect"
import * as Csrf from "./Csrf.js"
import type { HttpCookieSettings, SetCookieLine } from "./internal/http/cookie.js"
import { HttpCookie } from "./internal/http/cookie.js"
import type { SessionHttpOptions } from "./internal/http/options.js"
import { checkHttpOptions } from "./internal/http/options.js"
import { toNodeListener } from "./internal/http/node.js"
import type { SessionService } from "./Session.js"
import { Session } from "./Session.js"
import { SessionConfigError } from "./SessionError.js"
import type { SessionStoreService } from "./SessionStore.js"
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
// the middleware itself costs. `store`: the store, when known already (the layers).
const wrap = <E, R>(settings: Settings, app: HttpApp.Default<E, R>, store?: SessionStoreService) =>
  Effect.withFiberRuntime<
    HttpServerResponse.HttpServerResponse,
    E,
    Exclude<R, Session> | SessionStore | HttpServerRequest.HttpServerRequest
  >((fiber) => {
    const context = fiber.currentContext
    const request = Context.unsafeGet(context, HttpServerRequest.HttpServerRequest)
    const requestCookie = new HttpCookie(request, settings.cookie)
    // Read only when the store tracks devices (`track`).
    const client = () => ({ userAgent: request.headers["user-agent"], ip: Option.getOrUndefined(request.remoteAddress) })
    const session = Session.make(store ?? Context.unsafeGet(context, SessionStore), settings.csrf, requestCookie, client)
    // The app runs with Session in the fiber's context, put back as it was when the app is
    // done: what `Effect.provideService` does, without its acquire/release around the app.
    const restore = FiberRef.set(FiberRef.currentContext, context)
    // (The app's type still names Session, which the fiber's context then holds.)
    const provided = Effect.zipRight(
      FiberRef.set(FiberRef.currentContext, Context.add(context, Session, session)),
      app as Effect.Effect<HttpServerResponse.HttpServerResponse, E, Exclude<R, Session>>
    )
    return Effect.matchCauseEffect(provided, {
      onSuccess: (response) => Effect.as(restore, applyLines(response, requestCookie.lines)),
      onFailure: (cause) =>
        Effect.zipRight(
          restore,
          requestCookie.lines.length === 0 ? Effect.failCause(cause) : Effect.zipRight(addLinesToResponse(requestCookie), Effect.failCause(cause))
        )
    })
  })

const addLinesToResponse = (cookie: HttpCookie) =>
  HttpApp.appendPreResponseHandler((_request, response) => Effect.sync(() => applyLines(response, cookie.lines)))

interface Settings {
  readonly cookie: HttpCookieSettings
  readonly csrf: Csrf.Csrf
}

const settingsOf = (options: SessionHttpOptions): Settings | SessionConfigError => {
  const checked = checkHttpOptions(options)
  return checked instanceof SessionConfigError ? checked : { cookie: checked.cookie, csrf: Csrf.make(checked.csrf) }
}

const settingsOrThrow = (options: SessionHttpOptions): Settings => {
  const settings = settingsOf(options)
  if (settings instanceof SessionConfigError) throw settings
  return settings
}

const build =
  (settings: Settings): SessionHttpMiddleware =>
  (app) =>
    wrap(settings, app)

/**
 * The middleware, as an Effect that fails with `SessionConfigError` for invalid options.
 *
 * @since 4.0.0
 * @category constructors
 */
export const make = (options: SessionHttpOptions = {}): Effect.Effect<SessionHttpMiddleware, SessionConfigError> =>
  Effect.suspend(() => {
    const settings = settingsOf(options)
    return settings instanceof SessionConfigError ? Effect.fail(settings) : Effect.succeed(build(settings))
  })

/**
 * The middleware. Throws `SessionConfigError` at once for invalid options, as the Koa
 * factory does.
 *
 * @since 4.0.0
 * @category middleware
 */
export const middleware = (options: SessionHttpOptions = {}): SessionHttpMiddleware => build(settingsOrThrow(options))

/**
 * The middleware for `HttpLayerRouter` apps: a layer that provides `Session` to the routes
 * it is provided to, over the `SessionStore` of the layer's context. The same cookie rules
 * as {@link middleware}. Throws `SessionConfigError` at once for invalid options.
 *
 * @example
 * ```ts
 * import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 * import { Session } from "koa-redis-session-sets"
 * import { SessionHttp } from "koa-redis-session-sets/http"
 *
 * const Routes = HttpLayerRouter.add("GET", "/me", Effect.gen(function* () {
 *   const session = yield* Session
 *   return yield* HttpServerResponse.json(yield* session.get(["user_id"]))
 * })).pipe(Layer.provide(SessionHttp.layer({ keys: ["a secret"] })))
 * // then HttpLayerRouter.serve(Routes) or HttpLayerRouter.toWebHandler(Routes), with a SessionStore layer provided
 * ```
 *
 * @since 4.0.0
 * @category layers
 */
export const layer = (options: SessionHttpOptions = {}): Layer.Layer<HttpLayerRouter.Request<"Requires", Session>, never, SessionStore> => {
  const settings = settingsOrThrow(options)
  return HttpLayerRouter.middleware<{ provides: Session }>()(
    Effect.map(
      SessionStore,
      (store) => (app: Effect.Effect<HttpServerResponse.HttpServerResponse, HttpLayerRouter.unhandled, Session>) =>
        // With the store given, the context's SessionStore is not read.
        wrap(settings, app, store) as Effect.Effect<
          HttpServerResponse.HttpServerResponse,
          HttpLayerRouter.unhandled,
          HttpServerRequest.HttpServerRequest
        >
    )
  ).layer
}

/**
 * The `HttpApi` middleware that provides `Session`: add it to a group or an endpoint
 * (`.middleware(SessionApiMiddleware)`) and provide {@link layerApi}.
 *
 * @since 4.0.0
 * @category tags
 */
export class SessionApiMiddleware extends HttpApiMiddleware.Tag<SessionApiMiddleware>()("koa-redis-session-sets/SessionApiMiddleware", {
  provides: Session
}) {}

/**
 * The implementation of {@link SessionApiMiddleware}, over the `SessionStore` of the
 * layer's context: the same cookie rules as {@link middleware}, the cookie sent on the
 * request's response (an error response included). Throws `SessionConfigError` at once
 * for invalid options.
 *
 * @example
 * ```ts
 * import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { Effect, Layer, Schema } from "effect"
 * import { Session } from "koa-redis-session-sets"
 * import { SessionApiMiddleware, SessionHttp } from "koa-redis-session-sets/http"
 *
 * const Api = HttpApi.make("api").add(
 *   HttpApiGroup.make("me").add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.Unknown)).middleware(SessionApiMiddleware)
 * )
 * const MeLive = HttpApiBuilder.group(Api, "me", (handlers) =>
 *   handlers.handle("me", () => Effect.orDie(Effect.flatMap(Session, (session) => session.get(["user_id"]))))
 * )
 * const ApiLive = HttpApiBuilder.api(Api).pipe(Layer.provide(MeLive), Layer.provide(SessionHttp.layerApi({ keys: ["a secret"] })))
 * ```
 *
 * @since 4.0.0
 * @category layers
 */
export const layerApi = (options: SessionHttpOptions = {}): Layer.Layer<SessionApiMiddleware, never, SessionStore> => {
  const settings = settingsOrThrow(options)
  return Layer.effect(
    SessionApiMiddleware,
    Effect.map(SessionStore, (store) =>
      Effect.withFiberRuntime<SessionService>((fiber) => {
        const cookie = new HttpCookie(Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest), settings.cookie)
        // An HttpApi middleware has no hook on the response but a pre-response handler.
        return Effect.as(addLinesToResponse(cookie), Session.make(store, settings.csrf, cookie))
      })
    )
  )
}

/**
 * Everything in this module, as one value: `SessionHttp.middleware(options)`.
 *
 * @since 4.0.0
 * @category middleware
 */
export const SessionHttp = { middleware, make, layer, layerApi, toNodeListener } as const
