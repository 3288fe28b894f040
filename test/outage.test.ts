// A real redis-server killed, paused and restarted under a Koa app's load. Killed, requests
// fail with the refused connection as the cause (fast); paused, they time out.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Koa from "koa"
import { Redis } from "ioredis"
import koaRedisSessionSets, { RedisError, RedisTimeoutError } from "../src/index.js"
import type { SessionMiddleware } from "../src/index.js"
import { Browser, serve, type Served } from "./koaUtils.js"
import { startRedis, type RunningRedis } from "../scripts/redis-server.mjs"
import { checkInvariants } from "./invariants.mjs"
import { uniquePrefix } from "./utils.js"

const TIMEOUT_MS = 1000
// Generous: this bounds "never hangs", it is not a speed goal.
const MARGIN_MS = 1500

let redis: RunningRedis
let client: Redis
let mw: SessionMiddleware
let served: Served
const unhandled: Array<unknown> = []
const errors: Array<unknown> = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
const prefix = uniquePrefix("outage")

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled)
  redis = await startRedis()
  client = new Redis(redis.url) // ioredis defaults: offline queue, reconnect with back-off
  client.on("error", () => {})
  const app = new Koa()
  app.keys = ["k"]
  app.silent = true
  app.on("error", (error: unknown) => errors.push(error))
  mw = koaRedisSessionSets(app, { client, prefix, references: ["user_id"], timeout: TIMEOUT_MS })
  app.use(mw)
  app.use(async (ctx) => {
    if (ctx.path === "/write") await ctx.session.set({ user_id: Math.floor(Math.random() * 5), n: Date.now() })
    ctx.body = await ctx.session.get()
  })
  served = await serve(app)
})

afterAll(async () => {
  process.off("unhandledRejection", onUnhandled)
  await served.close()
  await mw.close()
  client.disconnect()
  await redis.stop()
})

interface Outcome {
  readonly status: number
  readonly millis: number
}

/** `clients` browsers, each sending requests one after another until `until()` is true. */
const load = async (clients: number, until: () => boolean): Promise<Array<Outcome>> => {
  const outcomes: Array<Outcome> = []
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const browser = new Browser(served.url)
      while (!until()) {
        const started = Date.now()
        const response = await browser.request(i % 2 === 0 ? "/write" : "/read")
        await response.arrayBuffer()
        outcomes.push({ status: response.status, millis: Date.now() - started })
      }
    })
  )
  return outcomes
}

const forMillis = (millis: number) => {
  const end = Date.now() + millis
  return () => Date.now() >= end
}

const servesAgain = async () => {
  const browser = new Browser(served.url)
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const response = await browser.request("/write")
    await response.arrayBuffer()
    if (response.status === 200) return true
    await new Promise((r) => setTimeout(r, 200))
  }
  return false
}

/** The invariants (test/invariants.mjs) after the load: references exact but for expired ids, TTLs right. */
const checkReferences = async () => {
  const report = await checkInvariants({ client, prefix, references: ["user_id"] })
  expect(report.sessions).toBeGreaterThan(0)
  expect(report.memberships).toBeGreaterThan(0)
  return report.violations.map((v) => v.message)
}

describe("Redis outages under load", () => {
  it("killed: every affected request gets 503 within the timeout, then the app serves again", async () => {
    const healthy = await load(8, forMillis(500))
    expect(healthy.length).toBeGreaterThan(0)
    expect(healthy.every((o) => o.status === 200)).toBe(true)

    const during = load(8, forMillis(3000))
    await new Promise((r) => setTimeout(r, 300))
    await redis.stop()
    const outcomes = await during
    const failed = outcomes.filter((o) => o.status !== 200)
    expect(failed.length).toBeGreaterThan(0)
    for (const o of failed) expect(o.status).toBe(503)
    for (const o of outcomes) expect(o.millis).toBeLessThan(TIMEOUT_MS + MARGIN_MS)

    redis = await startRedis({ port: redis.port })
    expect(await servesAgain()).toBe(true)
    expect(unhandled).toEqual([])
    // Refused, not timed out: each failure names the connection error (a call in flight
    // when the socket closed fails with the refused re-dial, or the socket's own error).
    expect(errors.length).toBeGreaterThan(0)
    for (const error of errors) {
      expect(error).toBeInstanceOf(RedisError)
      expect(["ECONNREFUSED", "ECONNRESET", "EPIPE"]).toContain(((error as RedisError).cause as NodeJS.ErrnoException).code)
    }
    expect(errors.map((error) => ((error as RedisError).cause as NodeJS.ErrnoException).code)).toContain("ECONNREFUSED")
  }, 60_000)

  it("hung (SIGSTOP): requests get 503 within the timeout; after SIGCONT no write is half-applied", async () => {
    errors.length = 0
    const during = load(8, forMillis(2500))
    await new Promise((r) => setTimeout(r, 300))
    redis.process.kill("SIGSTOP")
    let outcomes: Array<Outcome>
    try {
      outcomes = await during
    } finally {
      redis.process.kill("SIGCONT")
    }
    const failed = outcomes.filter((o) => o.status !== 200)
    expect(failed.length).toBeGreaterThan(0)
    for (const o of failed) expect(o.status).toBe(503)
    for (const o of outcomes) expect(o.millis).toBeLessThan(TIMEOUT_MS + MARGIN_MS)
    // A paused server keeps its sockets open: no connection failure is seen, calls time out.
    expect(errors.length).toBeGreaterThan(0)
    for (const error of errors) expect((error as RedisError).cause).toBeInstanceOf(RedisTimeoutError)
    expect(await servesAgain()).toBe(true)
    // Writes that timed out ran (or not) as whole scripts: the references are exact.
    await load(4, forMillis(300))
    expect(await checkReferences()).toEqual([])
    expect(unhandled).toEqual([])
  }, 60_000)
})
