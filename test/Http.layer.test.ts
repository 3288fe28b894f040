// SessionHttp.layer (HttpLayerRouter) and SessionHttp.layerApi (HttpApi middleware) over a
// real redis-server: the same session, cookie and signature as SessionHttp.middleware, so a
// sign-in through either is read through the plain middleware (and the other way round).
import { createHmac } from "node:crypto"
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApp,
  HttpLayerRouter,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Effect, Layer, Schema } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { RedisClient, Session, SessionConfigError, SessionStore } from "../src/index.js"
import { SessionApiMiddleware, SessionHttp } from "../src/Http.js"
import { redisUrl, uniquePrefix } from "./utils.js"

const KEY = "a layer test key"
const sign = (data: string) => createHmac("sha1", KEY).update(data).digest("base64url")
const closers: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const close of closers.reverse()) await close()
})

type Handler = (request: Request) => Promise<Response>
const storeLayer = (prefix: string) =>
  SessionStore.layer({ prefix, references: { user_id: {} } }).pipe(Layer.provide(RedisClient.layer(redisUrl())))
const userOf = (request: HttpServerRequest.HttpServerRequest) => new URL(request.url, "http://x").searchParams.get("user") ?? "nobody"

// The reference: the plain middleware on an HttpApp, reading /me.
const plainApp = (prefix: string): Handler => {
  const app = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/me",
      Effect.flatMap(Session, (s) => s.get(["user_id"])).pipe(
        Effect.map((data) => HttpServerResponse.unsafeJson({ user_id: data["user_id"] ?? null }))
      )
    ),
    HttpRouter.get(
      "/login",
      Effect.gen(function* () {
        const session = yield* Session
        yield* session.regenerate
        yield* session.set({ user_id: userOf(yield* HttpServerRequest.HttpServerRequest) })
        return HttpServerResponse.unsafeJson({ ok: true })
      })
    ),
    SessionHttp.middleware({ keys: [KEY] })
  )
  const { handler, dispose } = HttpApp.toWebHandlerLayer(app, storeLayer(prefix))
  closers.push(dispose)
  return handler
}

const layerRouterApp = (prefix: string): Handler => {
  const login = Effect.gen(function* () {
    const session = yield* Session
    yield* session.regenerate
    yield* session.set({ user_id: userOf(yield* HttpServerRequest.HttpServerRequest) })
    return HttpServerResponse.unsafeJson({ ok: true })
  })
  const routes = Layer.mergeAll(
    HttpLayerRouter.add("GET", "/login", Effect.orDie(login)),
    HttpLayerRouter.add(
      "GET",
      "/me",
      Effect.orDie(
        Effect.map(
          Effect.flatMap(Session, (s) => s.get(["user_id"])),
          (data) => HttpServerResponse.unsafeJson({ user_id: data["user_id"] ?? null })
        )
      )
    ),
    HttpLayerRouter.add(
      "GET",
      "/fail-after-login",
      Effect.flatMap(Session, (s) => s.set({ user_id: "failing" })).pipe(Effect.zipRight(Effect.die("boom")))
    )
  ).pipe(Layer.provide(SessionHttp.layer({ keys: [KEY] })), Layer.provide(storeLayer(prefix)))
  const { handler, dispose } = HttpLayerRouter.toWebHandler(routes, { disableLogger: true })
  closers.push(dispose)
  return handler
}

class Failed extends Schema.TaggedError<Failed>()("Failed", {}) {}
const Api = HttpApi.make("api").add(
  HttpApiGroup.make("users")
    .add(
      HttpApiEndpoint.get("login", "/login")
        .setUrlParams(Schema.Struct({ user: Schema.String }))
        .addSuccess(Schema.Struct({ ok: Schema.Boolean }))
    )
    .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.Struct({ user_id: Schema.NullOr(Schema.String) })))
    .add(HttpApiEndpoint.get("fail", "/fail-after-login").addError(Failed, { status: 409 }))
    .middleware(SessionApiMiddleware)
)
const apiApp = (prefix: string): Handler => {
  const UsersLive = HttpApiBuilder.group(Api, "users", (handlers) =>
    handlers
      .handle("login", ({ urlParams }) =>
        Effect.orDie(
          Effect.gen(function* () {
            const session = yield* Session
            yield* session.regenerate
            yield* session.set({ user_id: urlParams.user })
            return { ok: true }
          })
        )
      )
      .handle("me", () =>
        Effect.orDie(
          Effect.map(
            Effect.flatMap(Session, (s) => s.get(["user_id"])),
            (data) => ({ user_id: data["user_id"] ?? null })
          )
        )
      )
      .handle("fail", () =>
        Effect.flatMap(Effect.orDie(Effect.flatMap(Session, (s) => s.set({ user_id: "failing" }))), () => Effect.fail(new Failed()))
      )
  )
  const ApiLive = HttpApiBuilder.api(Api).pipe(
    Layer.provide(UsersLive),
    Layer.provide(SessionHttp.layerApi({ keys: [KEY] })),
    Layer.provide(storeLayer(prefix))
  )
  const { handler, dispose } = HttpApiBuilder.toWebHandler(Layer.mergeAll(ApiLive, HttpServer.layerContext))
  closers.push(dispose)
  return handler
}

const cookieHeader = (response: Response) =>
  response.headers
    .getSetCookie()
    .map((line) => line.split(";")[0])
    .join("; ")

const get = (handler: Handler, path: string, cookie?: string) =>
  handler(new Request(`http://127.0.0.1${path}`, cookie === undefined ? {} : { headers: { cookie } }))

for (const [name, make] of [
  ["SessionHttp.layer (HttpLayerRouter)", layerRouterApp],
  ["SessionHttp.layerApi (HttpApi middleware)", apiApp]
] as const) {
  describe(name, () => {
    it("signs in with the middleware's signed cookie; the plain middleware reads the session, and the other way round", async () => {
      const prefix = uniquePrefix("http-layer")
      const [app, plain] = [make(prefix), plainApp(prefix)]
      expect(await (await get(app, "/me")).json()).toEqual({ user_id: null })

      const login = await get(app, "/login?user=ada")
      expect(login.status).toBe(200)
      const lines = login.headers.getSetCookie()
      expect(lines).toHaveLength(2)
      const [cookie, signature] = lines.map((line) => line.split("; "))
      const id = cookie![0]!.slice("session-id=".length)
      expect(id).toMatch(/^[\w-]{24}$/)
      expect(cookie!.slice(1)).toEqual(expect.arrayContaining(["path=/", "samesite=lax", "httponly"]))
      expect(signature![0]).toBe(`session-id.sig=${sign(`session-id=${id}`)}`)

      expect(await (await get(app, "/me", cookieHeader(login))).json()).toEqual({ user_id: "ada" })
      expect(await (await get(plain, "/me", cookieHeader(login))).json()).toEqual({ user_id: "ada" })
      const viaPlain = await get(plain, "/login?user=bob")
      expect(await (await get(app, "/me", cookieHeader(viaPlain))).json()).toEqual({ user_id: "bob" })
      // A tampered signature is not a session.
      expect(await (await get(app, "/me", `session-id=${id}; session-id.sig=${sign("other")}`)).json()).toEqual({ user_id: null })
    })

    it("sends the cookie of a session written before the handler failed", async () => {
      const response = await get(make(uniquePrefix("http-layer-fail")), "/fail-after-login")
      expect(response.status).toBeGreaterThanOrEqual(400)
      expect(response.headers.getSetCookie().map((line) => line.split("=")[0])).toEqual(["session-id", "session-id.sig"])
    })
  })
}

it("refuses invalid options at once, as the middleware does", () => {
  expect(() => SessionHttp.layer({ keys: [] })).toThrow(SessionConfigError)
  expect(() => SessionHttp.layerApi({ signed: true })).toThrow(SessionConfigError)
  expect(() => SessionHttp.layer({ maxAge: 1 } as never)).toThrow(/store layer/)
})
