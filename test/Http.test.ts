// The ./http middleware over real HTTP and a real redis-server, next to a Koa app on the
// same Redis, prefix and keys: the two share sessions, and send the same Set-Cookie bytes.
import { createHmac } from "node:crypto"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { HttpApp, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Chunk, Context, Effect, Layer, Redacted, Stream } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import koaRedisSessionSets, { RedisClient, Session, SessionConfigError, SessionStore } from "../src/index.js"
import type { SessionMiddleware } from "../src/index.js"
import { SessionHttp, type SessionHttpOptions } from "../src/Http.js"
import { Browser, routeTo, serve, type Served } from "./koaUtils.js"
import { redisUrl, uniquePrefix } from "./utils.js"

const NEW_KEY = "the new key"
const OLD_KEY = "the old key"
const sign = (key: string, data: string) => createHmac("sha1", key).update(data).digest("base64url")

let client: Redis
const closers: Array<() => Promise<void>> = []
beforeAll(() => {
  client = new Redis(redisUrl())
})
afterAll(async () => {
  for (const close of closers.reverse()) await close()
  await client.quit()
})

const userOf = (url: string) => new URL(url, "http://x").searchParams.get("user") ?? "nobody"

const koaApp = async (prefix: string, keys: Array<string>): Promise<{ url: string; mw: SessionMiddleware }> => {
  const app = new Koa()
  app.silent = true
  app.keys = keys
  const mw = koaRedisSessionSets(app, { client, prefix, references: { user_id: {} } })
  app.use(mw)
  app.use(
    routeTo<SessionMiddleware>(
      {
        "/login": async (ctx) => {
          await ctx.session.regenerate()
          await ctx.session.set({ user_id: userOf(ctx.url) })
          return { ok: true }
        },
        "/me": async (ctx) => ({ user_id: (await ctx.session.get(["user_id"]))["user_id"] ?? null }),
        "/logout": async (ctx) => {
          await ctx.session.delete()
          return { ok: true }
        },
        "/csrf": async (ctx) => ({ token: await ctx.session.createCSRFToken() }),
        "/verify": async (ctx) => ({ valid: await ctx.session.verifyCSRFToken(null, ctx.get("x-csrf-token")) })
      },
      mw
    )
  )
  const served: Served = await serve(app)
  closers.push(async () => {
    await served.close()
    await mw.close()
  })
  return { url: served.url, mw }
}

const json = (body: unknown) => HttpServerResponse.unsafeJson(body)

const router = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/login",
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const session = yield* Session
      yield* session.regenerate
      yield* session.set({ user_id: userOf(request.url) })
      return json({ ok: true })
    })
  ),
  HttpRouter.get(
    "/me",
    Effect.gen(function* () {
      const session = yield* Session
      return json({ user_id: (yield* session.get(["user_id"]))["user_id"] ?? null })
    })
  ),
  HttpRouter.get(
    "/logout",
    Effect.gen(function* () {
      yield* (yield* Session).delete
      return json({ ok: true })
    })
  ),
  HttpRouter.get(
    "/csrf",
    Effect.gen(function* () {
      return json({ token: yield* (yield* Session).createCSRFToken() })
    })
  ),
  HttpRouter.get(
    "/verify",
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      return json({ valid: yield* (yield* Session).verifyCSRFToken(null, request.headers["x-csrf-token"]) })
    })
  ),
  HttpRouter.get(
    "/fail-after-login",
    Effect.gen(function* () {
      yield* (yield* Session).set({ user_id: "failing" })
      return yield* Effect.die("boom")
    })
  )
)

const effectHandler = (options: SessionHttpOptions, layer: Layer.Layer<SessionStore, unknown>) => {
  const { handler, dispose } = HttpApp.toWebHandlerLayer(router.pipe(SessionHttp.middleware(options)), layer)
  closers.push(dispose)
  return handler
}

const effectApp = async (prefix: string, options: SessionHttpOptions): Promise<{ url: string; handler: (r: Request) => Promise<Response> }> => {
  const layer = SessionStore.layer({ prefix, references: { user_id: {} } }).pipe(Layer.provide(RedisClient.layer(redisUrl())))
  const handler = effectHandler(options, layer)
  const server = createServer(SessionHttp.toNodeListener(handler))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, handler }
}

/** A Koa app and an Effect app on one Redis prefix, with the same keys. */
const pair = async (keys: Array<string> = [NEW_KEY, OLD_KEY], options: SessionHttpOptions = {}) => {
  const prefix = uniquePrefix("http")
  const koa = await koaApp(prefix, keys)
  const effect = await effectApp(prefix, { keys, ...options })
  return { prefix, koa, effect }
}

/** Raw Set-Cookie lines, with the random parts and the clock's second made comparable. */
const setCookies = (response: Response) => response.headers.getSetCookie()
const normalized = (lines: ReadonlyArray<string>) =>
  lines.map((line) => line.replace(/^([^=]+)=[^;]+/, "$1=<value>").replace(/expires=(?!Thu, 01 Jan 1970)[^;]+/, "expires=<date>"))

/** A cookie header a browser would send back, from Set-Cookie lines. */
const cookieHeader = (lines: ReadonlyArray<string>) => lines.map((line) => line.split(";")[0]).join("; ")

const get = (base: string, path: string, cookie?: string, headers: Record<string, string> = {}) =>
  fetch(base + path, { headers: { ...(cookie === undefined ? {} : { cookie }), ...headers }, redirect: "manual" })

describe("SessionHttp next to the Koa bridge (one Redis, the same keys)", () => {
  it("signs in through Koa, reads through the Effect app, and the reverse", async () => {
    const { koa, effect } = await pair()
    const viaKoa = new Browser(koa.url)
    await viaKoa.request("/login?user=alice")
    const carried = [...viaKoa.jar].map(([k, v]) => `${k}=${v}`).join("; ")
    const read = await get(effect.url, "/me", carried)
    expect(await read.json()).toEqual({ user_id: "alice" })
    expect(setCookies(read)).toEqual([]) // a read writes nothing

    const viaEffect = new Browser(effect.url)
    await viaEffect.request("/login?user=bob")
    expect(viaEffect.sessionId).toMatch(/^[\w-]+$/)
    const back = await get(koa.url, "/me", [...viaEffect.jar].map(([k, v]) => `${k}=${v}`).join("; "))
    expect(await back.json()).toEqual({ user_id: "bob" })
  })

  it("sends the Set-Cookie lines the Koa bridge sends, byte for byte (signature included)", async () => {
    const { koa, effect } = await pair()
    const fromKoa = setCookies(await get(koa.url, "/login?user=carol"))
    const fromEffect = setCookies(await get(effect.url, "/login?user=carol"))
    expect(fromEffect).toHaveLength(2)
    expect(normalized(fromEffect)).toEqual(normalized(fromKoa))
    expect(normalized(fromEffect)).toEqual([
      "session-id=<value>; path=/; expires=<date>; samesite=lax; httponly",
      "session-id.sig=<value>; path=/; expires=<date>; samesite=lax; httponly"
    ])
    const id = fromEffect[0]!.split(";")[0]!.slice("session-id=".length)
    expect(fromEffect[1]!.split(";")[0]).toBe(`session-id.sig=${sign(NEW_KEY, `session-id=${id}`)}`)
    // `expires`, as `cookies` writes it: now + 28 days (no Max-Age).
    const expires = Date.parse(fromEffect[0]!.match(/expires=([^;]+)/)![1]!)
    expect(Math.abs(expires - (Date.now() + 28 * 24 * 3600 * 1000))).toBeLessThan(5000)
    expect(fromEffect[0]).not.toMatch(/max-age/i)

    // Logging out: the same clearing lines as Koa.
    const koaOut = setCookies(await get(koa.url, "/logout", cookieHeader(fromKoa)))
    const effectOut = setCookies(await get(effect.url, "/logout", cookieHeader(fromEffect)))
    expect(effectOut).toEqual(koaOut)
    expect(effectOut).toHaveLength(2)
    expect(effectOut[0]).toBe("session-id=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; samesite=lax; httponly")
  })

  it("accepts a cookie signed with an older key and re-signs it with the current one, as Koa does", async () => {
    const { koa, effect } = await pair()
    const login = setCookies(await get(koa.url, "/login?user=dave"))
    const id = login[0]!.split(";")[0]!.slice("session-id=".length)
    const oldCookie = `session-id=${id}; session-id.sig=${sign(OLD_KEY, `session-id=${id}`)}`
    const viaEffect = await get(effect.url, "/me", oldCookie)
    expect(await viaEffect.json()).toEqual({ user_id: "dave" })
    const resigned = setCookies(viaEffect)
    expect(resigned).toEqual([`session-id.sig=${sign(NEW_KEY, `session-id=${id}`)}; path=/; httponly`])
    expect(resigned).toEqual(setCookies(await get(koa.url, "/me", oldCookie)))
  })

  it("refuses a tampered signature (and clears the .sig cookie as Koa does)", async () => {
    const { koa, effect } = await pair()
    const login = setCookies(await get(effect.url, "/login?user=eve"))
    const id = login[0]!.split(";")[0]!.slice("session-id=".length)
    const tampered = `session-id=${id}; session-id.sig=${sign("not a key", `session-id=${id}`)}`
    const response = await get(effect.url, "/me", tampered)
    expect(await response.json()).toEqual({ user_id: null })
    const lines = setCookies(response)
    expect(lines).toEqual(["session-id.sig=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly"])
    expect(lines).toEqual(setCookies(await get(koa.url, "/me", tampered)))
    // An unsigned id is refused too.
    expect(await (await get(effect.url, "/me", `session-id=${id}`)).json()).toEqual({ user_id: null })
  })

  it("gives a visitor who only reads no cookie and no Redis key", async () => {
    const { prefix, effect } = await pair()
    const response = await get(effect.url, "/me")
    expect(await response.json()).toEqual({ user_id: null })
    expect(setCookies(response)).toEqual([])
    expect(await client.keys(`${prefix}*`)).toEqual([])
  })

  it("shares CSRF secrets: a token from the Effect app verifies in Koa, and the reverse", async () => {
    const { koa, effect } = await pair()
    const browser = new Browser(effect.url)
    await browser.request("/login?user=frank")
    const { body } = await browser.json<{ token: string }>("/csrf")
    const cookie = [...browser.jar].map(([k, v]) => `${k}=${v}`).join("; ")
    expect(await (await get(koa.url, "/verify", cookie, { "x-csrf-token": body.token })).json()).toEqual({ valid: true })
    const fromKoa = (await (await get(koa.url, "/csrf", cookie)).json()) as { token: string }
    expect(await (await get(effect.url, "/verify", cookie, { "x-csrf-token": fromKoa.token })).json()).toEqual({ valid: true })
    expect(await (await get(effect.url, "/verify", cookie, { "x-csrf-token": "nope" })).json()).toEqual({ valid: false })
  })

  it("adds the cookie to an error response too", async () => {
    const { effect } = await pair()
    const response = await get(effect.url, "/fail-after-login")
    expect(response.status).toBe(500)
    expect(normalized(setCookies(response))).toEqual([
      "session-id=<value>; path=/; expires=<date>; samesite=lax; httponly",
      "session-id.sig=<value>; path=/; expires=<date>; samesite=lax; httponly"
    ])
  })

  it("sends Secure on HTTPS only (X-Forwarded-Proto only with proxy: true)", async () => {
    const { effect } = await pair()
    const https = await effect.handler(new Request("https://example.test/login?user=gina"))
    expect(setCookies(https).every((line) => line.endsWith("; samesite=lax; secure; httponly"))).toBe(true)
    const forwarded = setCookies(await get(effect.url, "/login?user=gina", undefined, { "x-forwarded-proto": "https" }))
    expect(forwarded.some((line) => line.includes("secure"))).toBe(false)
    const proxied = await pair(undefined, { proxy: true })
    const trusted = setCookies(await get(proxied.effect.url, "/login?user=gina", undefined, { "x-forwarded-proto": "https" }))
    expect(trusted.every((line) => line.includes("; secure;"))).toBe(true)
  })

  it("works over SessionStore.layerMemory, with Redacted keys and cookie options", async () => {
    const handler = effectHandler({ keys: Redacted.make([NEW_KEY]), key: "sid", sameSite: "strict", domain: "example.test" }, SessionStore.layerMemory())
    const login = setCookies(await handler(new Request("http://example.test/login?user=hal")))
    expect(normalized(login)).toEqual([
      "sid=<value>; path=/; expires=<date>; domain=example.test; samesite=strict; httponly",
      "sid.sig=<value>; path=/; expires=<date>; domain=example.test; samesite=strict; httponly"
    ])
    const me = await handler(new Request("http://example.test/me", { headers: { cookie: cookieHeader(login) } }))
    expect(await me.json()).toEqual({ user_id: "hal" })
  })
})

describe("SessionHttp and account controls", () => {
  it("records the request's user agent when the store tracks it (the device list shows it)", async () => {
    const memory = SessionStore.layerMemory({ references: ["user_id"], track: { userAgent: true } })
    const store = await Effect.runPromise(Effect.scoped(Layer.build(memory)).pipe(Effect.map((context) => Context.get(context, SessionStore))))
    const handler = effectHandler({ signed: false }, Layer.succeed(SessionStore, store))
    await handler(new Request("http://example.test/login?user=ida", { headers: { "user-agent": "Effect-Browser/1" } }))
    const devices = await Effect.runPromise(Stream.runCollect(store.listSessions("user_id", "ida")).pipe(Effect.map(Chunk.toArray)))
    expect(devices.map((device) => device.userAgent)).toEqual(["Effect-Browser/1"])
  })
})

describe("SessionHttp options", () => {
  it("refuses invalid options with SessionConfigError, at once", () => {
    const refused = (options: unknown) => {
      try {
        SessionHttp.middleware(options as SessionHttpOptions)
      } catch (error) {
        expect(error).toBeInstanceOf(SessionConfigError)
        return (error as SessionConfigError).option
      }
      return "accepted"
    }
    expect(refused({})).toBe("keys")
    expect(refused({ keys: [] })).toBe("keys")
    expect(refused({ keys: [""] })).toBe("keys")
    expect(refused({ signed: false })).toBe("accepted")
    expect(refused({ keys: ["k"], maxAge: "2h" })).toBe("maxAge")
    expect(refused({ keys: ["k"], sameSite: "sometimes" })).toBe("sameSite")
    expect(refused({ keys: ["k"], expires: new Date() })).toBe("expires")
    expect(refused({ keys: ["k"], saltLength: 0 })).toBe("saltLength")
    expect(refused({ keys: ["k"], proxy: "yes" })).toBe("proxy")
  })

  it("make fails in the error channel", async () => {
    const error = await Effect.runPromise(Effect.flip(SessionHttp.make({ keys: [] })))
    expect(error._tag).toBe("SessionConfigError")
    expect(error.message).not.toContain("undefined")
  })
})

describe("SessionHttp's Session, in the request fiber", () => {
  // The middleware's app and what runs after it in the same fiber (an outer middleware).
  const around = <E>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, Session>) =>
    Effect.gen(function* () {
      const outcome = yield* Effect.either(SessionHttp.middleware({ signed: false })(app))
      return { outcome, after: yield* Effect.serviceOption(Session) }
    }).pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, HttpServerRequest.fromWeb(new Request("http://localhost/"))),
      Effect.provide(SessionStore.layerMemory({ references: ["user_id"] }))
    )

  it("is the app's, and gone from the fiber's context once the app answers or fails", async () => {
    const answered = await Effect.runPromise(
      around(Effect.flatMap(Session, (session) => Effect.as(session.set({ user_id: "ada" }), HttpServerResponse.text("ok"))))
    )
    expect(answered.outcome._tag).toBe("Right")
    expect(answered.after._tag).toBe("None")
    const failed = await Effect.runPromise(around(Effect.flatMap(Session, () => Effect.fail("refused"))))
    expect(failed.outcome).toMatchObject({ _tag: "Left", left: "refused" })
    expect(failed.after._tag).toBe("None")
  })
})
