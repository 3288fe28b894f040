// RedisError that names the connection failure, and fail-fast while the client is known
// to be down: a port where nothing listens, and a real redis-server killed, stopped and
// restarted on the same port, through the Effect API, the Promise path and the Koa facade.
import { inspect } from "node:util"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, ManagedRuntime, Redacted } from "effect"
import { Cluster, Redis } from "ioredis"
import Koa from "koa"
import koaRedisSessionSets, { RedisClient, RedisError, RedisTimeoutError, SessionStore } from "../src/index.js"
import type { RedisClientService, SessionMiddleware } from "../src/index.js"
import { freePort, startRedis, type RunningRedis } from "../scripts/redis-server.mjs"
import { Browser, serve } from "./koaUtils.js"
import { redisClusterNodes, uniquePrefix } from "./utils.js"

// Long, so that an answer within it is fail-fast and not the timeout. The bound below is
// a behaviour check (it did not wait out the timeout), not a speed goal.
const TIMEOUT = "20 seconds"
const TIMEOUT_MS = 20_000
const FAST_MS = TIMEOUT_MS / 4

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A redis-server stopped when the test ends (only ours, by its PID, through `stop`). */
const redisServer = async (port?: number): Promise<RunningRedis> => {
  const server = await startRedis(port === undefined ? {} : { port })
  cleanups.push(() => server.stop())
  return server
}

/** Kills our redis-server the hard way (a crash), and waits until it is gone. */
const crash = async (server: RunningRedis): Promise<void> => {
  server.process.kill("SIGKILL")
  await server.stop()
}

/** A caller-owned client (with ioredis' retries, or none), disconnected when the test ends. */
const ownClient = (url: string, retry = true): Redis => {
  const client = retry ? new Redis(url) : new Redis(url, { retryStrategy: () => null })
  client.on("error", () => {})
  cleanups.push(() => client.disconnect())
  return client
}

interface Failure {
  readonly error: unknown
  readonly millis: number
}

/** Runs `f` and returns what it failed with, and after how long. */
const failure = async (f: () => Promise<unknown>): Promise<Failure> => {
  const started = performance.now()
  try {
    await f()
  } catch (error) {
    return { error, millis: performance.now() - started }
  }
  throw new Error("expected a failure")
}

const CONNECTION_CODES = ["ECONNREFUSED", "ECONNRESET", "EPIPE"]

/** A RedisError caused by the connection failing (not by a timeout), answered fast. */
const expectConnectionFailure = ({ error, millis }: Failure, code: string | ReadonlyArray<string> = "ECONNREFUSED") => {
  expect(error).toBeInstanceOf(RedisError)
  const cause = (error as RedisError).cause
  expect(cause).not.toBeInstanceOf(RedisTimeoutError)
  expect(cause).toBeInstanceOf(Error)
  expect(typeof code === "string" ? [code] : code).toContain((cause as NodeJS.ErrnoException).code)
  expect((error as RedisError).message).toContain((cause as NodeJS.ErrnoException).code)
  expect(millis).toBeLessThan(FAST_MS)
}

/** Polls `f` until it succeeds (the client re-dials with back-off, up to ~5 s apart). */
const eventually = async <A>(f: () => Promise<A>, deadlineMillis = 20_000): Promise<A> => {
  const deadline = Date.now() + deadlineMillis
  for (;;) {
    try {
      return await f()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

const deadPort = async (): Promise<number> => freePort()

/** SessionStore + RedisClient over a layer, as a runtime disposed when the test ends. */
const storeRuntime = (redisLayer: Layer.Layer<RedisClient, unknown>) => {
  const runtime = ManagedRuntime.make(SessionStore.layer({ prefix: uniquePrefix("connection") }).pipe(Layer.provideMerge(redisLayer)))
  cleanups.push(() => runtime.dispose())
  // Rejects with the typed error itself, as the facade does (runPromise would wrap it).
  const run = async <A, E>(effect: Effect.Effect<A, E, SessionStore | RedisClient>): Promise<A> => {
    const exit = await runtime.runPromiseExit(effect)
    if (Exit.isSuccess(exit)) return exit.value
    throw Cause.squash(exit.cause)
  }
  const get = (id: string) => run(Effect.flatMap(SessionStore, (store) => store.get(id)))
  const set = (id: string, values: Record<string, string>) => run(Effect.flatMap(SessionStore, (store) => store.set(id, values)))
  const redis = () => run(RedisClient)
  return { runtime, get, set, redis }
}

const ID = "connection-test-id-0000000000"

describe("RedisError names the connection failure", () => {
  it("nothing listens on the port: the layer, the Effect path and the Promise path fail with ECONNREFUSED, fast", async () => {
    const port = await deadPort()
    const url = `redis://127.0.0.1:${port}`

    // A layer that owns its client: its connect fails with the connection error itself.
    const owned = storeRuntime(RedisClient.layer({ url, timeout: TIMEOUT, connectTimeout: TIMEOUT }))
    const fromLayer = await failure(() => owned.get(ID))
    expectConnectionFailure(fromLayer)
    expect((fromLayer.error as RedisError).message).toContain(`127.0.0.1:${port}`)
    expect((fromLayer.error as RedisError).message).toMatch(/ECONNREFUSED/)
    expect(((fromLayer.error as RedisError).cause as NodeJS.ErrnoException & { port: number }).port).toBe(port)

    // A call made while a fresh client's first connect is under way waits in the queue
    // (no failure seen yet), and fails with the connection error once that attempt fails.
    const queued = ownClient(url)
    const queuedService = RedisClient.unsafeFromClient(queued, { timeout: TIMEOUT })
    expect(queued.status).toBe("connecting")
    expectConnectionFailure(await failure(() => queuedService.unsafeSend("PING", (c) => c.ping())))

    // Over a caller-owned client that failed to connect, Effect and Promise calls fail at once.
    const client = ownClient(url)
    const caller = storeRuntime(RedisClient.layerFromClient(client, { timeout: TIMEOUT }))
    const first = await failure(() => caller.get(ID))
    expectConnectionFailure(first)
    expect((first.error as RedisError).operation).toBe("SessionStore.get")
    expect((first.error as RedisError).message).toBe(`Redis SessionStore.get failed: cannot connect to 127.0.0.1:${port} (ECONNREFUSED)`)
    expectConnectionFailure(await failure(() => caller.set(ID, { a: "1" })))
    const redis: RedisClientService = await caller.redis()
    expectConnectionFailure(await failure(() => redis.unsafeSend("PING", (c) => c.ping())))

    // A client that gave up (no retries, status "end"): the cause is still the connection
    // error, not ioredis' "Connection is closed.".
    const tracked = ownClient(url, false)
    const trackedService = RedisClient.unsafeFromClient(tracked, { timeout: TIMEOUT })
    await eventually(async () => expect(tracked.status).toBe("end"))
    expectConnectionFailure(await failure(() => trackedService.unsafeSend("PING", (c) => c.ping())))
  })

  it("a redis-server killed mid-run: calls fail with the connection error, not the timeout; restarted, the same client serves again", async () => {
    const server = await redisServer()
    // A fresh caller-owned client's first connect is no failure: its first call waits for it.
    const fresh = ownClient(server.url)
    const freshService = RedisClient.unsafeFromClient(fresh, { timeout: TIMEOUT })
    expect(await freshService.unsafeSend("PING", (c) => c.ping())).toBe("PONG")

    const { get, set, redis } = storeRuntime(RedisClient.layer({ url: server.url, timeout: TIMEOUT }))
    const service = await redis()
    await set(ID, { n: "0" })

    // Effect and Promise callers in a loop, while the server dies under them.
    let running = true
    const outcomes: Array<{ readonly ok: true } | Failure> = []
    const loop = async (call: () => Promise<unknown>) => {
      while (running) {
        const started = performance.now()
        try {
          await call()
          outcomes.push({ ok: true })
        } catch (error) {
          outcomes.push({ error, millis: performance.now() - started })
        }
        // A call that fails at once settles in a microtask: let timers run.
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    const loops = [
      loop(() => set(ID, { n: String(Date.now()) })),
      loop(() => get(ID)),
      loop(() => service.unsafeSend("GET", (c) => c.get("t:connection:plain"))),
      loop(() => freshService.unsafeSend("PING", (c) => c.ping()))
    ]
    await new Promise((resolve) => setTimeout(resolve, 300))
    await crash(server)
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    running = false
    await Promise.all(loops)

    const failures = outcomes.filter((o): o is Failure => "error" in o)
    expect(outcomes.length - failures.length).toBeGreaterThan(0)
    expect(failures.length).toBeGreaterThan(0)
    // A call in flight when the socket died fails with that socket error; the rest with the refused re-dial.
    for (const f of failures) expectConnectionFailure(f, CONNECTION_CODES)
    expect(failures.some((f) => ((f.error as RedisError).cause as NodeJS.ErrnoException).code === "ECONNREFUSED")).toBe(true)

    const restarted = await redisServer(server.port)
    expect(restarted.port).toBe(server.port)
    await eventually(() => set(ID, { n: "again" }))
    expect(await get(ID)).toMatchObject({ n: "again" })
    expect(await service.unsafeSend("PING", (c) => c.ping())).toBe("PONG")
    expect(await eventually(() => freshService.unsafeSend("PING", (c) => c.ping()))).toBe("PONG")
  }, 60_000)

  it("a caller retrying in a tight loop while Redis is down still lets the client reconnect", async () => {
    const server = await redisServer()
    const client = ownClient(server.url)
    const service = RedisClient.unsafeFromClient(client, { timeout: TIMEOUT })
    expect(await service.unsafeSend("PING", (c) => c.ping())).toBe("PONG")
    await crash(server)
    await eventually(async () => expectConnectionFailure(await failure(() => service.unsafeSend("PING", (c) => c.ping()))))

    // Restarting the server needs the event loop (spawn, its output, ioredis' re-dial timer):
    // a fail-fast rejection settled in a microtask would starve it, and the loop below would
    // spin through its bound without the server ever coming back.
    const restarting = redisServer(server.port)
    let attempts = 0
    let reply: unknown
    while (attempts < 500_000 && reply === undefined) {
      attempts++
      try {
        reply = await service.unsafeSend("PING", (c) => c.ping())
      } catch (error) {
        expect(error).toBeInstanceOf(RedisError)
      }
    }
    await restarting
    expect(reply).toBe("PONG")
  }, 60_000)

  it("a Redis Cluster (coarser): with no start-up node reachable, calls fail fast with ioredis' ClusterAllFailedError; the test cluster still serves", async () => {
    const nodes = [{ host: "127.0.0.1", port: await deadPort() }]
    const expectNoNode = ({ error, millis }: Failure) => {
      expect(error).toBeInstanceOf(RedisError)
      expect(((error as RedisError).cause as Error).name).toBe("ClusterAllFailedError")
      expect((error as RedisError).message).toContain("no Redis Cluster node reachable")
      expect(millis).toBeLessThan(FAST_MS)
    }
    const owned = storeRuntime(RedisClient.layer({ cluster: { nodes }, timeout: TIMEOUT, connectTimeout: TIMEOUT }))
    expectNoNode(await failure(() => owned.get(ID)))

    const cluster = new Cluster(nodes)
    cluster.on("error", () => {})
    cleanups.push(() => cluster.disconnect())
    const caller = storeRuntime(RedisClient.layerFromClient(cluster, { timeout: TIMEOUT }))
    expectNoNode(await failure(() => caller.get(ID)))
    expectNoNode(await failure(() => caller.set(ID, { n: "1" })))

    const live = storeRuntime(RedisClient.layer({ cluster: { nodes: redisClusterNodes() }, timeout: TIMEOUT }))
    await live.set(ID, { n: "1" })
    expect(await live.get(ID)).toMatchObject({ n: "1" })
    const service = await live.redis()
    expect(await service.unsafeSend("GET", (c) => c.get(`t:connection:{${ID}}`))).toBeNull()
  })

  describe("through the Koa facade", () => {
    const koaApp = async (options: { readonly redis: string } | { readonly client: Redis }) => {
      const app = new Koa()
      app.keys = ["k"]
      app.silent = true
      const errors: Array<unknown> = []
      app.on("error", (error: unknown) => errors.push(error))
      const mw: SessionMiddleware = koaRedisSessionSets(app, { ...options, prefix: uniquePrefix("connection-koa"), timeout: TIMEOUT_MS })
      cleanups.push(() => mw.close())
      app.use(mw)
      app.use(async (ctx) => {
        await ctx.session.set({ n: Date.now() })
        ctx.body = await ctx.session.get()
      })
      const served = await serve(app)
      cleanups.push(() => served.close())
      const browser = new Browser(served.url)
      const request = async (): Promise<{ readonly status: number; readonly millis: number }> => {
        const started = performance.now()
        const response = await browser.request("/")
        await response.arrayBuffer()
        return { status: response.status, millis: performance.now() - started }
      }
      return { errors, request }
    }

    const outageAndRecovery = async (server: RunningRedis, app: Awaited<ReturnType<typeof koaApp>>) => {
      expect((await app.request()).status).toBe(200)
      // A clean shutdown this time: the connection closes, and the re-dial is refused.
      await server.stop()
      for (let i = 0; i < 3; i++) {
        const outcome = await app.request()
        expect(outcome.status).toBe(503)
        expect(outcome.millis).toBeLessThan(FAST_MS)
      }
      expect(app.errors.length).toBeGreaterThanOrEqual(3)
      for (const error of app.errors) expectConnectionFailure({ error, millis: 0 }, CONNECTION_CODES)
      expect(app.errors.map((e) => ((e as RedisError).cause as NodeJS.ErrnoException).code)).toContain("ECONNREFUSED")
      expect(String(app.errors.at(-1))).toContain(`127.0.0.1:${server.port}`)

      await redisServer(server.port)
      await eventually(async () => expect((await app.request()).status).toBe(200))
    }

    it("redis: a URL, the library's own client: 503 with the connection error, then it serves again", async () => {
      const server = await redisServer()
      await outageAndRecovery(server, await koaApp({ redis: server.url }))
    }, 60_000)

    it("client: the caller's client, with no error listener of its own: the same, and ioredis' unhandled-error print is kept", async () => {
      const server = await redisServer()
      const client = new Redis(server.url)
      cleanups.push(() => client.disconnect())
      const printed: Array<unknown> = []
      const consoleError = console.error
      console.error = (...args: Array<unknown>) => void printed.push(args[0])
      cleanups.push(() => (console.error = consoleError))
      await outageAndRecovery(server, await koaApp({ client }))
      expect(printed).toContain("[ioredis] Unhandled error event:")
    }, 60_000)
  })

  it("a URL with credentials never reaches the message, String(error) or its inspection", async () => {
    const port = await deadPort()
    const url = `redis://alice:s3cret-pw@127.0.0.1:${port}/2`
    const leaks = (error: unknown) => {
      for (const text of [(error as Error).message, String(error), inspect(error, { depth: 5 }), JSON.stringify(error)]) {
        expect(text).not.toContain("s3cret-pw")
        expect(text).not.toContain("alice")
        expect(text).not.toContain("redis://")
      }
    }

    const layer = storeRuntime(RedisClient.layer({ url: Redacted.make(url), timeout: TIMEOUT, connectTimeout: TIMEOUT }))
    const fromLayer = await failure(() => layer.get(ID))
    expectConnectionFailure(fromLayer)
    expect((fromLayer.error as RedisError).message).toContain(`127.0.0.1:${port}`)
    leaks(fromLayer.error)

    const app = new Koa()
    app.keys = ["k"]
    app.silent = true
    const errors: Array<unknown> = []
    app.on("error", (error: unknown) => errors.push(error))
    const mw = koaRedisSessionSets(app, { redis: url, prefix: uniquePrefix("connection-secret"), timeout: TIMEOUT_MS })
    cleanups.push(() => mw.close())
    app.use(mw)
    app.use(async (ctx) => {
      await ctx.session.set({ n: 1 })
      ctx.body = "written"
    })
    const served = await serve(app)
    cleanups.push(() => served.close())
    const browser = new Browser(served.url)
    const started = performance.now()
    const response = await browser.request("/")
    await response.arrayBuffer()
    expect(response.status).toBe(503)
    expect(errors).toHaveLength(1)
    expectConnectionFailure({ error: errors[0], millis: performance.now() - started })
    expect((errors[0] as RedisError).message).toBe(`Redis SessionStore.set failed: cannot connect to 127.0.0.1:${port} (ECONNREFUSED)`)
    leaks(errors[0])
  })
})

// During an outage every request fails, and Koa's default error handler
// (koa/lib/application.js `onerror`) prints `err.stack` of each 5xx it does not expose.
// RedisError's stack is its message alone, so that is one line per request.
describe("Koa's default error handler while Redis is down", () => {
  /** A Koa app with Koa's own error handling (not silent, no "error" listener) over a port where nothing listens. */
  const downApp = async (configure?: (app: Koa) => void) => {
    const port = await deadPort()
    const app = new Koa()
    app.keys = ["k"]
    configure?.(app)
    const mw = koaRedisSessionSets(app, { redis: `redis://127.0.0.1:${port}`, prefix: uniquePrefix("connection-onerror"), timeout: TIMEOUT_MS })
    cleanups.push(() => mw.close())
    app.use(mw)
    app.use(async (ctx) => {
      await ctx.session.set({ n: Date.now() })
      ctx.body = await ctx.session.get()
    })
    const served = await serve(app)
    cleanups.push(() => served.close())
    const browser = new Browser(served.url)
    // Each console.error call, as the text it prints.
    const printed: Array<string> = []
    const consoleError = console.error
    console.error = (...args: Array<unknown>) => void printed.push(args.map(String).join(" "))
    cleanups.push(() => (console.error = consoleError))
    const requests = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const response = await browser.request("/")
        await response.arrayBuffer()
        expect(response.status).toBe(503)
      }
    }
    return { port, printed, requests }
  }

  it("prints one short line per failed request, naming the cause; the README's app.on(\"error\") recipe prints one per interval", async () => {
    const N = 40
    const plain = await downApp()
    await plain.requests(N)
    expect(plain.printed).toHaveLength(N)
    for (const text of plain.printed) {
      const lines = text.split("\n").filter((line) => line.trim() !== "")
      expect(lines).toEqual([`  RedisError: Redis SessionStore.set failed: cannot connect to 127.0.0.1:${plain.port} (ECONNREFUSED)`])
    }

    const withRecipe = await downApp((app) => {
      // ---- the recipe, as in README "Outages and timeouts" ----
      const INTERVAL_MS = 10_000
      let lastReport = -Infinity
      let suppressed = 0
      app.on("error", (err) => {
        if (!(err instanceof RedisError)) return app.onerror(err)
        const now = Date.now()
        if (now - lastReport < INTERVAL_MS) {
          suppressed++
          return
        }
        lastReport = now
        console.error(`${err.message}${suppressed > 0 ? ` (${suppressed} more since the last report)` : ""}`)
        suppressed = 0
      })
      // ---- end of the recipe ----
    })
    await withRecipe.requests(N)
    expect(withRecipe.printed).toEqual([`Redis SessionStore.set failed: cannot connect to 127.0.0.1:${withRecipe.port} (ECONNREFUSED)`])
  })
})
