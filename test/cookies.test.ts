// Signed session cookies, compared byte for byte with what v3 sent: v3 read the id with
// `ctx.cookies.get(key, { signed: true, ...options })` (the `cookies` package), which
// re-signs a `.sig` made with an older key and clears a bad one.
import Keygrip from "keygrip"
import Koa from "koa"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest"
import koaRedisSessionSets from "../src/index.js"
import type { SessionMiddleware } from "../src/index.js"
import { Browser, serve, type Served } from "./koaUtils.js"
import { uniquePrefix } from "./utils.js"

type Keys = Array<string | Buffer> | Keygrip

let client: Redis
const running: Array<{ served: Served; mw?: SessionMiddleware }> = []

beforeAll(() => {
  client = new Redis(inject("redisUrl"))
  // `expires` comes from Date.now(): a frozen Date makes both apps' headers comparable
  // byte for byte. Timers stay real (Redis and the HTTP servers need them).
  vi.useFakeTimers({ toFake: ["Date"], now: Date.UTC(2030, 0, 1, 12) })
})
afterAll(async () => {
  vi.useRealTimers()
  for (const { served, mw } of running) {
    await served.close()
    await mw?.close()
  }
  await client.quit()
})

// keygrip signs with Buffer keys too (crypto.createHmac); its types say strings only.
const sign = (key: string | Buffer, data: string) => new Keygrip([key as string]).sign(data)

interface Pair {
  readonly mw: SessionMiddleware
  readonly ours: Served
  readonly v3: Served
  /** Sets `app.keys` of both apps to the same value (the same array, when one is given). */
  setKeys(keys: Keys): void
}

/**
 * Our app (`/get` reads the session, `/set` writes it) and a v3 reference app doing what
 * v3's Session did with the cookie: `/get` reads it, `/set` reads it then writes `?id`
 * with the same cookie options.
 */
const makePair = async (keys: Keys, overwrite = true): Promise<Pair> => {
  const app = new Koa()
  const reference = new Koa()
  for (const a of [app, reference]) {
    a.silent = true
    a.proxy = true
  }
  const setKeys = (k: Keys) => {
    app.keys = k as Array<string>
    reference.keys = k as Array<string>
  }
  setKeys(keys)
  const mw = koaRedisSessionSets(app, { client, prefix: uniquePrefix("cookies"), overwrite })
  app.use(mw)
  app.use(async (ctx) => {
    if (ctx.path === "/get") ctx.body = { a: (await ctx.session.get(["a"]))["a"] ?? null }
    else if (ctx.path === "/set") await ctx.session.set({ a: String(ctx.query["a"] ?? "1") })
    if (ctx.body === undefined) ctx.status = 204
  })
  const options = { signed: true, httpOnly: true, sameSite: "lax", overwrite, path: "/", maxAge: mw.store.maxAge } as const
  reference.use((ctx) => {
    ctx.cookies.get("session-id", options)
    if (ctx.path === "/set") ctx.cookies.set("session-id", String(ctx.query["id"]), options)
    ctx.status = 204
  })
  const ours = await serve(app)
  const v3 = await serve(reference)
  running.push({ served: ours, mw }, { served: v3 })
  return { mw, ours, v3, setKeys }
}

const request = async (url: string, cookie: string | undefined, headers: Record<string, string> = {}) => {
  const response = await fetch(url, { headers: { ...headers, ...(cookie === undefined ? {} : { cookie }) } })
  const text = await response.text()
  return { setCookie: response.headers.getSetCookie(), body: text === "" ? undefined : (JSON.parse(text) as unknown) }
}

/** The same request to both apps; `/set` on v3 writes the id our app wrote. */
const both = async (pair: Pair, path: "/get" | "/set", cookie: string | undefined, headers: Record<string, string> = {}) => {
  const ours = await request(pair.ours.url + path, cookie, headers)
  const written = ours.setCookie.find((h) => h.startsWith("session-id="))?.split(";")[0]!.slice("session-id=".length)
  const v3 = await request(`${pair.v3.url}${path}${path === "/set" ? `?id=${encodeURIComponent(written ?? "")}` : ""}`, cookie, headers)
  return { ours: ours.setCookie, v3: v3.setCookie, body: ours.body, written }
}

/** A stored session, and the Cookie headers a client could send for it. */
const session = async (pair: Pair, current: string, older: string) => {
  const id = pair.mw.store.createSessionId()
  await pair.mw.store.set(id, { a: "1" })
  const data = `session-id=${id}`
  return {
    id,
    current: `${data}; session-id.sig=${sign(current, data)}`,
    older: `${data}; session-id.sig=${sign(older, data)}`,
    quotedOlder: `session-id="${id}"; session-id.sig=${sign(older, data)}`,
    forged: `${data}; session-id.sig=${sign("not a key", data)}`,
    noSig: data,
    emptySig: `${data}; session-id.sig=`,
    sigOnly: `session-id.sig=${sign(current, data)}`,
    resigned: `session-id.sig=${sign(current, data)}; path=/; httponly`
  }
}

const CLEARED_SIG = "session-id.sig=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly"

describe("signed session cookies, as the cookies package reads them", () => {
  // Arrays are signed by the library; a Keygrip instance is left to the cookies package.
  const keySets = (): Array<[string, Keys]> => [
    ["array", ["key new", "key old"]],
    ["Keygrip", new Keygrip(["key new", "key old"])]
  ]

  it("a read sends what cookies.get(key, { signed: true }) sends: nothing, a re-signed .sig, or a cleared one", async () => {
    for (const [kind, keys] of keySets()) {
      const pair = await makePair(keys)
      const s = await session(pair, "key new", "key old")
      const cases: Array<[string, string | undefined, Record<string, string>, Array<string>, unknown]> = [
        ["valid with keys[0]", s.current, {}, [], { a: "1" }],
        ["valid with an older key", s.older, {}, [s.resigned], { a: "1" }],
        ["valid with an older key, quoted value", s.quotedOlder, {}, [s.resigned], { a: "1" }],
        ["valid with an older key, over TLS", s.older, { "x-forwarded-proto": "https" }, [s.resigned.replace("; httponly", "; secure; httponly")], { a: "1" }],
        ["bad signature", s.forged, {}, [CLEARED_SIG], { a: null }],
        [".sig missing", s.noSig, {}, [], { a: null }],
        [".sig empty", s.emptySig, {}, [], { a: null }],
        ["cookie missing, .sig present", s.sigOnly, {}, [], { a: null }],
        ["no Cookie header", undefined, {}, [], { a: null }]
      ]
      for (const [name, cookie, headers, expected, body] of cases) {
        const label = `${name} (${kind})`
        const result = await both(pair, "/get", cookie, headers)
        expect(result.ours, label).toEqual(result.v3)
        expect(result.ours, label).toEqual(expected)
        expect(result.body, label).toEqual(body)
      }
    }
  })

  it("a read then a write in one request sends v3's headers, with overwrite true and false", async () => {
    for (const overwrite of [true, false]) {
      for (const [kind, keys] of keySets()) {
        const pair = await makePair(keys, overwrite)
        const s = await session(pair, "key new", "key old")
        const cases: Array<[string, string | undefined, boolean]> = [
          ["valid with keys[0]", s.current, true],
          ["valid with an older key", s.older, true],
          ["bad signature", s.forged, false],
          [".sig missing", s.noSig, false],
          ["no Cookie header", undefined, false]
        ]
        for (const [name, cookie, keepsId] of cases) {
          const label = `${name}, overwrite: ${overwrite} (${kind})`
          const result = await both(pair, "/set", cookie)
          expect(result.ours, label).toEqual(result.v3)
          // A valid cookie keeps its id; otherwise a fresh one is written.
          expect(result.written === s.id, label).toBe(keepsId)
          const sigs = result.ours.filter((h) => h.startsWith("session-id.sig="))
          expect(sigs.at(-1), label).toMatch(/^session-id\.sig=[\w-]+; path=\/; expires=[^;]+; samesite=lax; httponly$/)
        }
      }
    }
  })

  it("keys rotated between requests: re-signed on the next read, so retiring the old key keeps the user signed in", async () => {
    const pair = await makePair(["first"])
    const b = new Browser(pair.ours.url)
    await b.request("/set?a=signed-in")
    const id = b.sessionId
    const step = async (keys: Keys) => {
      pair.setKeys(keys)
      const cookie = [...b.jar].map(([k, v]) => `${k}=${v}`).join("; ")
      const mirrored = await both(pair, "/get", cookie)
      expect(mirrored.ours).toEqual(mirrored.v3)
      const { body } = await b.json("/get") // the browser takes the headers
      expect(body).toEqual({ a: "signed-in" })
      expect(b.sessionId).toBe(id)
      return mirrored.ours
    }
    expect(await step(["second", "first"])).toHaveLength(1) // re-signed with "second"
    expect(await step(["second"])).toEqual([]) // "first" retired
    expect(await step(new Keygrip(["grip", "second"]))).toHaveLength(1) // to a Keygrip (the cookies package re-signs)
    expect(await step(["second", "grip"])).toHaveLength(1) // and back
    const keys = ["second"]
    expect(await step(keys)).toEqual([])
    keys.unshift("third") // in place
    expect(await step(keys)).toHaveLength(1)
    keys.pop()
    expect(await step(keys)).toEqual([])
    keys[0] = "fourth" // in place: the "third" signature is now bad
    pair.setKeys(keys)
    const cookie = [...b.jar].map(([k, v]) => `${k}=${v}`).join("; ")
    const bad = await both(pair, "/get", cookie)
    expect(bad.ours).toEqual(bad.v3)
    expect(bad.ours).toEqual([CLEARED_SIG])
    expect(bad.body).toEqual({ a: null })
  })

  it("a Buffer key changed in place between requests: the old signature stops verifying, writes sign with the new bytes", async () => {
    const key = Buffer.from("buffer key one")
    const pair = await makePair([key])
    const b = new Browser(pair.ours.url)
    await b.request("/set?a=signed-in")
    const cookie = [...b.jar].map(([k, v]) => `${k}=${v}`).join("; ")
    expect((await b.json("/get")).body).toEqual({ a: "signed-in" }) // its signature is now remembered
    key.write("buffer key two")
    const read = await both(pair, "/get", cookie)
    expect(read.ours).toEqual(read.v3)
    expect(read.ours).toEqual([CLEARED_SIG])
    expect(read.body).toEqual({ a: null })
    const written = await both(pair, "/set", cookie)
    expect(written.ours).toEqual(written.v3)
    const data = `session-id=${written.written!}`
    expect(written.ours.find((h) => h.startsWith("session-id.sig="))).toContain(`session-id.sig=${sign(Buffer.from("buffer key two"), data)};`)
  })
})
