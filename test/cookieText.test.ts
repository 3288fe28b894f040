// The session cookie read from the Cookie header and written as Set-Cookie text, without
// Koa's `Cookies` object, agrees byte for byte with what the `cookies` package reads and
// writes on the same request, for any cookie options, keys, request and earlier headers.
import { IncomingMessage, ServerResponse } from "node:http"
import { Socket } from "node:net"
import fc from "fast-check"
import Koa from "koa"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import type { CheckedFactoryOptions } from "../src/internal/options.js"
import { cookieOptionsOf, CookieSettings, KoaCookie } from "../src/internal/koa/cookie.js"
import type { KoaContextLike } from "../src/internal/koa/types.js"

beforeAll(() => {
  vi.useFakeTimers({ toFake: ["Date"], now: Date.UTC(2030, 0, 1, 12) })
})
afterAll(() => {
  vi.useRealTimers()
})

interface Request {
  readonly cookie: string | undefined
  readonly forwardedHttps: boolean
  readonly encrypted: boolean
  readonly earlier: string | Array<string> | undefined
}

const contextOf = (app: Koa, request: Request) => {
  const socket = new Socket()
  if (request.encrypted) Object.assign(socket, { encrypted: true })
  const req = new IncomingMessage(socket)
  req.headers = { host: "example.com" }
  if (request.cookie !== undefined) req.headers.cookie = request.cookie
  if (request.forwardedHttps) req.headers["x-forwarded-proto"] = "https"
  const res = new ServerResponse(req)
  // A copy: `cookies` pushes onto the list it finds.
  if (request.earlier !== undefined) res.setHeader("Set-Cookie", typeof request.earlier === "string" ? request.earlier : [...request.earlier])
  return { ctx: app.createContext(req, res), res }
}

// Whether Koa built its Cookies on this context (its own slot, found as the library finds it).
const builtCookies = (ctx: object) =>
  Object.getOwnPropertySymbols(ctx).some((s) => s.description === "context#cookies" && (ctx as Record<symbol, unknown>)[s] !== undefined)

const outcome = (run: () => unknown, res: ServerResponse) => {
  try {
    return { value: run(), headers: res.getHeader("Set-Cookie") }
  } catch (error) {
    return { error: (error as Error).message }
  }
}

const KEY = fc.constantFrom("session-id", "sid", "a.b")
const ID = fc.stringMatching(/^[\w-]{4,32}$/)
const OPTIONS = fc.record(
  {
    path: fc.constantFrom("/", "/app", ""),
    domain: fc.constantFrom("example.com", ".example.com"),
    priority: fc.constantFrom("low", "High", "medium"),
    sameSite: fc.constantFrom<boolean | string>(true, false, "lax", "Strict", "none"),
    secure: fc.boolean(),
    httpOnly: fc.boolean(),
    partitioned: fc.boolean(),
    overwrite: fc.boolean()
  },
  { requiredKeys: [] }
)
const KEYS = fc.oneof(fc.constant(undefined), fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }))
const EARLIER = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom("other=1; path=/", "session-id=old; path=/", "sid.sig=x; path=/"),
  fc.array(fc.constantFrom("other=1; path=/", "session-id=old; path=/", "session-id.sig=old; path=/", "sid=1", "a.b=2", "a.bc=3"), {
    maxLength: 4
  })
)
const REQUEST = (cookie: fc.Arbitrary<string | undefined>) =>
  fc.record({ cookie, forwardedHttps: fc.boolean(), encrypted: fc.boolean(), earlier: EARLIER })

const setup = (key: string, keys: Array<string> | undefined, options: object, proxy: boolean) => {
  const app = new Koa({ proxy })
  if (keys !== undefined) app.keys = keys
  const signed = keys !== undefined
  const resolved = cookieOptionsOf({ key, signed, ...options } as unknown as CheckedFactoryOptions)
  return { app, signed, resolved, settings: new CookieSettings(app, key, signed, resolved.options, 60_000) }
}

describe("the session cookie as text", () => {
  it("writes the Set-Cookie headers cookies.set writes (or throws its error), without building Koa's Cookies", () => {
    fc.assert(
      fc.property(
        KEY,
        ID,
        KEYS,
        OPTIONS,
        fc.boolean(),
        REQUEST(fc.constant(undefined)),
        fc.constantFrom(60_000, 1, 28 * 24 * 3600 * 1000),
        (key, id, keys, options, proxy, request, maxAge) => {
          const { app, signed, resolved, settings } = setup(key, keys, options, proxy)
          const ours = contextOf(app, request)
          const theirs = contextOf(app, request)
          const got = outcome(() => new KoaCookie(ours.ctx as unknown as KoaContextLike, settings).write(id, maxAge), ours.res)
          const expected = outcome(() => theirs.ctx.cookies.set(key, id, { maxAge, ...resolved.options, signed }) && undefined, theirs.res)
          expect(got).toEqual(expected)
          expect(builtCookies(ours.ctx)).toBe(false)
        }
      ),
      { numRuns: 400 }
    )
  })

  it("reads what cookies.get(key, { signed }) reads, sending the same re-signed or cleared .sig", () => {
    fc.assert(
      fc.property(
        KEY,
        ID,
        KEYS,
        fc.boolean(),
        fc.nat(3),
        fc.constantFrom("", "other=1", "x=1; ", ' '),
        fc.boolean(),
        EARLIER,
        (key, id, keys, quoted, sigKind, around, dropValue, earlier) => {
          const { app, signed, settings } = setup(key, keys, {}, false)
          // The .sig: none, made with the current key, with an older one, or made up (signed by `cookies` itself).
          let sig: string | undefined
          if (keys !== undefined && sigKind > 0) {
            const signer = sigKind === 1 ? keys : sigKind === 2 ? [keys[keys.length - 1]!] : ["made up"]
            const grip = new Koa()
            grip.keys = signer
            const probe = contextOf(grip, { cookie: undefined, forwardedHttps: false, encrypted: false, earlier: undefined })
            probe.ctx.cookies.set(key, id, { signed: true })
            const line = ([] as Array<string>).concat(probe.res.getHeader("Set-Cookie") as Array<string>).find((l) => l.startsWith(`${key}.sig=`))!
            sig = line.slice(key.length + 5).split(";")[0]
          }
          const parts = [around, dropValue ? "" : `${key}=${quoted ? `"${id}"` : id}`, sig === undefined ? "" : `${key}.sig=${sig}`].filter(Boolean)
          const request = { cookie: parts.length === 0 ? undefined : parts.join("; "), forwardedHttps: false, encrypted: false, earlier }
          const ours = contextOf(app, request)
          const theirs = contextOf(app, request)
          // Text, taken now: `cookies` pushes onto the very list getHeader returns.
          const before = JSON.stringify(ours.res.getHeader("Set-Cookie"))
          const got = outcome(() => new KoaCookie(ours.ctx as unknown as KoaContextLike, settings).read(), ours.res)
          const expected = outcome(() => theirs.ctx.cookies.get(key, { signed }), theirs.res)
          expect(got).toEqual(expected)
          // Koa's Cookies is built only to send a re-signed or cleared .sig.
          if (JSON.stringify(got.headers) === before) expect(builtCookies(ours.ctx)).toBe(false)
        }
      ),
      { numRuns: 400 }
    )
  })

  it("uses an app's own ctx.cookies when it replaced Koa's", () => {
    const { app, settings } = setup("session-id", undefined, {}, false)
    const { ctx, res } = contextOf(app, { cookie: "session-id=from-header", forwardedHttps: false, encrypted: false, earlier: undefined })
    const calls: Array<string> = []
    ctx.cookies = {
      get: (name: string) => (calls.push(`get ${name}`), "from-own-cookies"),
      set: (name: string, value: string) => (calls.push(`set ${name}=${value}`), undefined)
    } as unknown as typeof ctx.cookies
    const cookie = new KoaCookie(ctx as unknown as KoaContextLike, settings)
    expect(cookie.read()).toBe("from-own-cookies")
    cookie.write("abcd", 60_000)
    expect(calls).toEqual(["get session-id", "set session-id=abcd"])
    expect(res.getHeader("Set-Cookie")).toBeUndefined()
  })

  it("uses ctx.cookies on a context that is not one of the app's (a hand-made one, without req.headers)", () => {
    const { settings } = setup("session-id", undefined, {}, false)
    const jar = new Map([["session-id", "from-jar"]])
    const ctx = { cookies: { get: (name: string) => jar.get(name), set: (name: string, value: string) => void jar.set(name, value) }, req: {} }
    const cookie = new KoaCookie(ctx as unknown as KoaContextLike, settings)
    expect(cookie.read()).toBe("from-jar")
    cookie.write("abcd", 60_000)
    expect(jar.get("session-id")).toBe("abcd")
  })
})
