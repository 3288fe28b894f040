// `timeout` is the longest a session operation may take: all of its Redis calls together,
// not each of them. (The cluster's protocols: test/SessionStore.cluster.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import { inject } from "vitest"
import koaRedisSessionSets, { Session } from "../src/index.js"
import type { SessionMiddleware } from "../src/index.js"
import { Browser, serve, type Served } from "./koaUtils.js"
import { setSession } from "../src/internal/store/lua/setSession.js"
import { uniquePrefix } from "./utils.js"

const TIMEOUT = 600
// Each call well within the timeout; two of them are not.
const DELAY = TIMEOUT * 0.6

const EVENT_METHODS = new Set<PropertyKey>(["on", "once", "off", "addListener", "removeListener", "listenerCount", "config"])

/** A real client whose every command is answered `DELAY` late (the commands themselves run as sent). */
const slowClient = (client: Redis): Redis =>
  new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== "function") return value
      if (EVENT_METHODS.has(property)) return (value as (...a: Array<unknown>) => unknown).bind(target)
      return (...args: Array<unknown>) =>
        new Promise((resolve) => setTimeout(resolve, DELAY)).then(() => (value as (...a: Array<unknown>) => unknown).apply(target, args))
    }
  })

let client: Redis
let mw: SessionMiddleware
let served: Served
const prefix = uniquePrefix("timeout")

beforeAll(async () => {
  client = new Redis(inject("redisUrl"))
  // Cached, so that no write turns into EVALSHA + EVAL (two slow commands in one call).
  await client.script("LOAD", setSession.source)
  const app = new Koa()
  app.silent = true
  mw = koaRedisSessionSets(app, { client: slowClient(client), prefix, signed: false, timeout: TIMEOUT, references: { user_id: {} } })
  app.use(mw)
  app.use(async (ctx) => {
    if (ctx.path === "/csrf") ctx.body = { token: await ctx.session.createCSRFToken() }
    else if (ctx.path === "/csrf-effect") {
      ctx.body = { token: await mw.run(ctx, Effect.flatMap(Session, (session) => session.createCSRFToken())) }
    } else if (ctx.path === "/get") ctx.body = await ctx.session.get()
  })
  served = await serve(app)
})

afterAll(async () => {
  await served.close()
  await mw.close()
  await client.quit()
})

/** A browser holding the cookie of a session that has no CSRF secret yet. */
const withSession = async (): Promise<Browser> => {
  const id = mw.store.createSessionId()
  await client.hset(mw.store.getSessionKey(id), { id, user_id: "1" })
  await client.pexpire(mw.store.getSessionKey(id), 60_000)
  const browser = new Browser(served.url)
  browser.jar.set("session-id", id)
  return browser
}

describe("timeout bounds a whole operation (single server)", () => {
  for (const path of ["/csrf", "/csrf-effect"]) {
    it(`createCSRFToken on a session without a secret (a read, then a write) fails with 503 within the timeout: ${path}`, async () => {
      const browser = await withSession()
      // Two calls of 0.6 × timeout each take 1.2 ×: each alone is in time, the operation is not.
      const response = await browser.request(path)
      expect(response.status).toBe(503)
    })
  }

  it("a one-call operation within the timeout is served through the same client", async () => {
    const browser = await withSession()
    const response = await browser.json("/get")
    expect(response.status).toBe(200)
    expect(response.body).toMatchObject({ user_id: "1" })
  })
})
