// v3.0.0's `__tests__/index.js`, replayed against the v4 factory: the same apps, options,
// handlers and expectations, test by test. What changed, and why:
// - Redis: the harness's server (`inject("redisUrl")`) instead of localhost:6379, and no
//   FLUSHALL (other files share the server). v3 used the fixed prefix "asdf" and, elsewhere,
//   no prefix at all; each app here gets a prefix from `uniquePrefix` instead. The first and
//   the last test share one, as v3's shared "asdf".
// - HTTP: a real server on 127.0.0.1 (`serve`) and the cookie-keeping `Browser` instead of a
//   supertest agent; each app is closed with `await mw.close()` after its server.
// - `ctx.assert.equal(a, 1)` is http-assert's loose `==`, as in v3 (Redis hands back "1"); the
//   `<unknown>` only tells its typings that a string may be compared with a number. Handlers
//   take `ctx: Koa.Context` because TypeScript wants assertion functions on annotated names.
// - The one v4 difference (touch) keeps v3's expectation in a comment next to v4's.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { Redis } from "ioredis"
import Koa from "koa"
import { inject } from "vitest"
import Session from "../../src/index.js"
import type { SessionMiddleware } from "../../src/index.js"
import { Browser, serve, type Served } from "../koaUtils.js"
import { uniquePrefix } from "../utils.js"

let client: Redis
const keys = ["asdf", "1234"]

beforeAll(() => {
  client = new Redis(inject("redisUrl"))
})
afterAll(() => client.quit())

// v3: prefix "asdf", shared by the first describe and `.getReferenceKey()` below.
const asdf = uniquePrefix("v3-index-asdf")

/** Serves `app` with `mw` mounted, as v3's `app.listen()` + `_request.agent(server)`. */
interface Running {
  readonly served: Served
  readonly agent: Browser
  readonly mw: SessionMiddleware
}

const listen = async (app: Koa, mw: SessionMiddleware): Promise<Running> => {
  const served = await serve(app)
  return { served, agent: new Browser(served.url), mw }
}

const stop = async (running: Running | undefined) => {
  if (running === undefined) return
  await running.served.close()
  await running.mw.close()
}

describe("context.session", () => {
  describe("should get and set the session", () => {
    let running: Running | undefined
    beforeAll(async () => {
      const app = new Koa()
      app.keys = keys

      const mw = Session(app, {
        maxAge: "28 days",
        signed: false,
        prefix: asdf,
        references: {
          string: {}
        },
        client
      })
      app.use(mw)

      app.use(async (ctx: Koa.Context) => {
        switch (ctx.method) {
          case "POST": {
            await ctx.session.set({
              number: 1,
              string: "string"
            })
            ctx.status = 204
            break
          }
          case "GET": {
            const session = await ctx.session.get()
            ctx.assert.equal<unknown>(session.number, 1)
            ctx.assert.equal<unknown>(session.string, "string")

            const key = ctx.session.getKey()
            const obj = await client.hgetall(key)
            ctx.assert(obj)
            ctx.assert.equal<unknown>(obj.number, 1)
            ctx.assert.equal<unknown>(obj.string, "string")

            ctx.status = 204
            break
          }
        }
      })

      running = await listen(app, mw)
    })

    afterAll(() => stop(running))

    it(".session.set()", async () => {
      const res = await running!.agent.request("/", { method: "POST" })
      expect(res.status).toBe(204)
    })

    it(".session.get()", async () => {
      const res = await running!.agent.request("/")
      expect(res.status).toBe(204)
    })
  })

  describe("should unset the session", () => {
    let running: Running | undefined
    beforeAll(async () => {
      const app = new Koa()
      app.keys = keys

      // v3 passed no prefix (keys under ""); a unique one keeps this file's keys apart.
      const mw = Session(app, {
        signed: false,
        prefix: uniquePrefix("v3-index-unset"),
        client
      })
      app.use(mw)

      app.use(async (ctx: Koa.Context) => {
        switch (ctx.method) {
          case "POST": {
            await ctx.session.set({
              number: 1,
              string: "string"
            })
            ctx.status = 204
            break
          }
          case "DELETE": {
            await ctx.session.unset(["number", "string"])
            ctx.status = 204
            break
          }
          case "GET": {
            const session = await ctx.session.get()
            ctx.assert(!session.number)
            ctx.assert(!session.string)
            ctx.status = 204
            break
          }
        }
      })

      running = await listen(app, mw)
    })

    afterAll(() => stop(running))

    it(".session.set()", async () => {
      const res = await running!.agent.request("/", { method: "POST" })
      expect(res.status).toBe(204)
    })

    it(".session.unset()", async () => {
      const res = await running!.agent.request("/", { method: "DELETE" })
      expect(res.status).toBe(204)
    })

    it(".session.get()", async () => {
      const res = await running!.agent.request("/")
      expect(res.status).toBe(204)
    })
  })

  describe("should update the session", () => {
    const prefix = uniquePrefix("v3-index-touch") // v3: no prefix
    let running: Running | undefined
    beforeAll(async () => {
      const app = new Koa()
      app.keys = keys
      const mw = Session(app, {
        signed: false,
        prefix,
        client
      })
      app.use(mw)
      app.use(async (ctx: Koa.Context) => {
        await ctx.session.touch()
        ctx.status = 204
      })
      running = await listen(app, mw)
    })

    afterAll(() => stop(running))

    it(".session.touch()", async () => {
      const res = await running!.agent.request("/")
      // v3 (documented behaviour): return agent.get('/').expect('Set-Cookie', /.*/).expect(204)
      //   — a request without a session got a fresh id in a cookie, and a PEXPIRE on a key that did not exist.
      // v4 difference: touch() on a request without a session sends no cookie and writes nothing (README, Migrating from v3)
      expect(res.headers.getSetCookie()).toEqual([])
      expect(res.status).toBe(204)
      expect(await client.keys(`${prefix}:*`)).toEqual([])
    })

    it(".session.touch() with a session sends the cookie, as v3 did (v4's side of the difference above)", async () => {
      const { mw, agent } = running!
      const id = mw.store.createSessionId()
      await mw.store.set(id, { number: 1 })
      await client.pexpire(mw.store.getSessionKey(id), 1000)
      agent.jar.set("session-id", id)

      const res = await agent.request("/")
      expect(res.headers.get("set-cookie")).toMatch(/.*/)
      expect(agent.lastSetCookies.map((c) => [c.name, c.value])).toEqual([["session-id", id]])
      expect(res.status).toBe(204)
      // touch() reset the lifetime to maxAge (28 days by default).
      expect(await client.pttl(mw.store.getSessionKey(id))).toBeGreaterThan(27 * 24 * 60 * 60 * 1000)
    })
  })

  describe("should delete the session", () => {
    let running: Running | undefined
    beforeAll(async () => {
      const app = new Koa()
      app.keys = keys
      const mw = Session(app, {
        signed: false,
        prefix: uniquePrefix("v3-index-delete"), // v3: no prefix
        client
      })
      app.use(mw)
      app.use(async (ctx: Koa.Context) => {
        switch (ctx.method) {
          case "POST": {
            await ctx.session.set({
              number: 1,
              string: "string"
            })
            ctx.status = 204
            break
          }
          case "DELETE": {
            await ctx.session.delete()
            ctx.status = 204
            break
          }
          case "GET": {
            const session = await ctx.session.get()
            ctx.assert(!session.number)
            ctx.assert(!session.string)
            ctx.status = 204
            break
          }
        }
      })

      running = await listen(app, mw)
    })

    afterAll(() => stop(running))

    it(".session.set()", async () => {
      const res = await running!.agent.request("/", { method: "POST" })
      expect(res.status).toBe(204)
    })

    it(".session.delete()", async () => {
      const res = await running!.agent.request("/", { method: "DELETE" })
      expect(res.status).toBe(204)
    })

    it(".session.get()", async () => {
      const res = await running!.agent.request("/")
      expect(res.status).toBe(204)
    })
  })

  describe("should handle CSRF tokens", () => {
    let running: Running | undefined
    afterEach(async () => {
      await stop(running)
      running = undefined
    })

    it("w/o getting the current session", async () => {
      const app = new Koa()
      app.keys = keys
      const mw = Session(app, {
        signed: false,
        prefix: uniquePrefix("v3-index-csrf"), // v3: no prefix
        client
      })
      app.use(mw)
      app.use(async (ctx: Koa.Context) => {
        const token = await ctx.session.createCSRFToken()
        ctx.assert(await ctx.session.verifyCSRFToken(token))
        ctx.status = 204
      })

      running = await listen(app, mw)

      const res = await running.agent.request("/")
      expect(res.status).toBe(204)
    })

    // v3 gave this test the same name as the one above; it is the one that does get the session.
    it("w/o getting the current session", async () => {
      const app = new Koa()
      app.keys = keys
      const mw = Session(app, {
        signed: false,
        prefix: uniquePrefix("v3-index-csrf"), // v3: no prefix
        client
      })
      app.use(mw)
      app.use(async (ctx: Koa.Context) => {
        const session = await ctx.session.get()
        const token = await ctx.session.createCSRFToken(session)
        ctx.assert(await ctx.session.verifyCSRFToken(session, token))
        ctx.status = 204
      })

      running = await listen(app, mw)

      const res = await running.agent.request("/")
      expect(res.status).toBe(204)
    })
  })
})

describe("session", () => {
  it(".getReferenceKey()", async () => {
    const app = new Koa()
    app.keys = keys
    const session = Session(app, {
      // same options as first test
      maxAge: "28 days",
      signed: false,
      prefix: asdf,
      references: {
        string: {}
      },
      client
    })
    app.use(session)

    try {
      const key = session.getReferenceKey("string", "string")
      const results = await client.smembers(key)
      expect(results.length).toBeGreaterThan(0)
    } finally {
      await session.close()
    }
  })
})
