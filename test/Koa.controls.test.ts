// The account controls through a real Koa app over HTTP on a real redis-server: the device
// list with opaque handles, revoke one, revoke the others, lifetime(), rolling cookies,
// the absolute deadline, and the Effect `Session` twin of the same operations.
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import { inject } from "vitest"
import koaRedisSessionSets, { Session } from "../src/index.js"
import type { KoaRedisSessionSetsOptions, SessionMiddleware } from "../src/index.js"
import { Browser, routeTo, serve, type Served } from "./koaUtils.js"
import { uniquePrefix } from "./utils.js"

const client = new Redis(inject("redisUrl"))
const running: Array<{ served: Served; mw: SessionMiddleware }> = []
afterAll(async () => {
  for (const t of running) {
    await t.served.close()
    await t.mw.close()
  }
  await client.quit()
})

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const makeApp = async (options: Partial<KoaRedisSessionSetsOptions>) => {
  const app = new Koa()
  app.silent = true
  app.keys = ["a key"]
  const prefix = uniquePrefix("koa-controls")
  const mw = koaRedisSessionSets(app, { client, prefix, references: { user_id: {} }, ...options })
  app.use(mw)
  app.use(
    routeTo(
      {
        "/login": async (ctx) => {
          await ctx.session!.regenerate()
          await ctx.session!.set({ user_id: String(ctx.query["user"]) })
        },
        "/me": async (ctx) => ctx.session!.get(),
        "/touch": async (ctx) => ctx.session!.touch(),
        "/sessions": async (ctx) => ctx.session!.listSessions("user_id"),
        "/revoke": async (ctx) => ({ revoked: await ctx.session!.revokeSession(ctx.query["handle"]) }),
        "/revoke-others": async (ctx) => ({ revoked: await ctx.session!.revokeOthers("user_id") }),
        "/lifetime": async (ctx) => (await ctx.session!.lifetime()) ?? { none: true },
        "/effect-sessions": (ctx) =>
          mw.run(
            ctx,
            Effect.gen(function* () {
              const session = yield* Session
              return { sessions: yield* session.listSessions("user_id"), lifetime: yield* session.lifetime }
            })
          )
      },
      mw
    )
  )
  const served = await serve(app)
  running.push({ served, mw })
  return { mw, prefix, browser: (userAgent?: string) => new Browser(served.url, userAgent) }
}

interface Device {
  handle: string
  current: boolean
  userAgent?: string
  ip?: string
  createdAt?: number
  lastSeenAt?: number
  expiresAt?: number
  absoluteExpiresAt?: number
}

const devices = async (browser: Browser) => (await browser.json<Array<Device>>("/sessions")).body

describe("account controls through Koa", () => {
  it("lists the account's devices with opaque handles; revokes one; revokes the others", async () => {
    const { mw } = await makeApp({ track: { userAgent: true, ip: true } })
    const laptop = new Browser(running.at(-1)!.served.url, "Laptop/1")
    const phone = new Browser(running.at(-1)!.served.url, "Phone/2")
    const tablet = new Browser(running.at(-1)!.served.url, "Tablet/3")
    for (const browser of [laptop, phone, tablet]) await browser.request("/login?user=zoe")
    const seen = await devices(laptop)
    expect(seen.map((d) => d.userAgent).sort()).toEqual(["Laptop/1", "Phone/2", "Tablet/3"])
    expect(seen.filter((d) => d.current).map((d) => d.userAgent)).toEqual(["Laptop/1"])
    for (const device of seen) {
      expect(device.ip).toBe("127.0.0.1")
      expect(device.createdAt).toBeGreaterThan(0)
      // A handle is not an id: none of the three session ids appears in the listing.
      for (const browser of [laptop, phone, tablet]) expect(JSON.stringify(device)).not.toContain(browser.sessionId!.split(".")[0])
      expect(device).not.toHaveProperty("id")
    }
    // A handle replayed as a cookie is no session.
    const replay = new Browser(running.at(-1)!.served.url)
    replay.jar.set("session-id", seen.find((d) => d.userAgent === "Phone/2")!.handle)
    expect((await replay.json("/me")).body).toEqual({})

    // Another account's handle, a made-up one, and a handle minted for another viewer: false, nothing deleted.
    const stranger = new Browser(running.at(-1)!.served.url, "Other/9")
    await stranger.request("/login?user=yan")
    const strangers = await devices(stranger)
    expect((await laptop.json("/revoke?handle=" + strangers[0]!.handle)).body).toEqual({ revoked: false })
    expect((await laptop.json("/revoke?handle=nonsense")).body).toEqual({ revoked: false })
    const phoneView = await devices(phone)
    const tabletAsPhoneSees = phoneView.find((d) => d.userAgent === "Tablet/3")!.handle
    expect((await laptop.json("/revoke?handle=" + tabletAsPhoneSees)).body).toEqual({ revoked: false })
    expect(await mw.store.listByReference("user_id", "zoe")).toHaveLength(3)
    expect(await mw.store.listByReference("user_id", "yan")).toHaveLength(1)

    // Revoke the phone from the laptop.
    const phoneHandle = seen.find((d) => d.userAgent === "Phone/2")!.handle
    expect((await laptop.json("/revoke?handle=" + phoneHandle)).body).toEqual({ revoked: true })
    expect((await phone.json("/me")).body).toEqual({})
    expect((await devices(laptop)).map((d) => d.userAgent).sort()).toEqual(["Laptop/1", "Tablet/3"])

    // Sign out the other devices: the tablet goes, the laptop stays.
    expect((await laptop.json("/revoke-others")).body).toEqual({ revoked: 1 })
    expect((await tablet.json("/me")).body).toEqual({})
    expect((await laptop.json<Record<string, string>>("/me")).body["user_id"]).toBe("zoe")
    const left = await devices(laptop)
    expect(left).toHaveLength(1)
    expect(left[0]!.current).toBe(true)
    expect(await mw.store.listByReference("user_id", "yan")).toHaveLength(1)

    // The current session's own handle signs it out, and clears its cookie.
    expect((await laptop.json("/revoke?handle=" + left[0]!.handle)).body).toEqual({ revoked: true })
    expect(laptop.sessionId).toBeUndefined()
    expect(await mw.store.listByReference("user_id", "zoe")).toEqual([])
  })

  it("the Effect Session sees the same devices and lifetime as ctx.session", async () => {
    const { browser } = await makeApp({ absoluteMaxAge: "2 hours", maxAge: "1 hour" })
    const user = browser("Effect/1")
    await user.request("/login?user=ula")
    const viaEffect = (await user.json<{ sessions: Array<Device>; lifetime: Record<string, number> }>("/effect-sessions")).body
    // Expiry is read as now + the remaining TTL: two reads a moment apart may differ by a millisecond or so.
    const sameBut = (a: { expiresAt?: number | undefined }, b: { expiresAt?: number | undefined }) => {
      const { expiresAt: x, ...restA } = a
      const { expiresAt: y, ...restB } = b
      expect(restA).toEqual(restB)
      expect(Math.abs(x! - y!)).toBeLessThan(50)
    }
    const listed = await devices(user)
    expect(viaEffect.sessions).toHaveLength(1)
    sameBut(viaEffect.sessions[0]!, listed[0]!)
    const lifetime = (await user.json<Record<string, number>>("/lifetime")).body
    sameBut(viaEffect.lifetime, lifetime)
    expect(lifetime["absoluteExpiresAt"]).toBe(lifetime["createdAt"]! + 2 * 60 * 60 * 1000)
    expect(lifetime["expiresAt"]).toBeLessThanOrEqual(lifetime["createdAt"]! + 60 * 60 * 1000 + 50)
    expect((await new Browser(user.base).json("/lifetime")).body).toEqual({ none: true })
  })

  it("a rolling read re-sends the cookie with the renewed lifetime, at most once per interval", async () => {
    // An interval long enough for the burst of reads below on a loaded machine.
    const { browser } = await makeApp({ rolling: true, maxAge: 20_000, rollingInterval: 2000 })
    const user = browser()
    await user.request("/login?user=vic")
    await user.request("/me")
    expect(user.lastSetCookies).toEqual([])
    await sleep(2100)
    await user.request("/me")
    const renewed = user.lastSetCookies.find((c) => c.name === "session-id")!
    // Expires is in whole seconds: the renewed 20 s, not the 18 s left of the login's.
    expect(Date.parse(String(renewed.attributes["expires"])) - Date.now()).toBeGreaterThan(18_500)
    for (let i = 0; i < 3; i++) {
      await user.request("/me")
      expect(user.lastSetCookies).toEqual([])
    }
  })

  it("after the absolute deadline the session is gone and the next write starts a new id", async () => {
    // Lifetimes of whole seconds: a cookie's Expires is in seconds, and the test browser honours it.
    const { browser, mw } = await makeApp({ maxAge: 1500, absoluteMaxAge: 2500 })
    const user = browser()
    await user.request("/login?user=wes")
    const first = user.sessionId
    expect(first).toBeDefined()
    // Active all along: each touch renews the idle lifetime, none passes the deadline.
    for (let i = 0; i < 3; i++) {
      await sleep(700)
      await user.request("/touch")
      expect(user.sessionId).toBe(first)
      expect((await user.json<Record<string, string>>("/me")).body["user_id"]).toBe("wes")
    }
    await sleep(2500 - 2100 + 200)
    expect((await user.json("/me")).body).toEqual({})
    await user.request("/login?user=wes")
    expect(user.sessionId).toMatch(/^[\w-]{24}$/)
    expect(user.sessionId).not.toBe(first)
    expect(await mw.store.listByReference("user_id", "wes")).toHaveLength(1)
  })
})
