// At a client's first connection the library reads `maxmemory-policy` and warns, once per
// client, unless it is `noeviction` (README "Redis configuration": under any eviction
// policy, volatile-* included, Redis can evict a reference set while its sessions live,
// and revoke-all then misses them). Each describe starts its own redis-server (or
// cluster) with the policy under test and stops it, by its PID, in afterAll.
import { tracingChannel } from "node:diagnostics_channel"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, HashMap, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { Cluster, Redis } from "ioredis"
import Koa from "koa"
import { startCluster, startRedis, type RunningCluster, type RunningRedis } from "../scripts/redis-server.mjs"
import koaRedisSessionSets, { RedisClient, SessionStore } from "../src/index.js"
import { commandStats } from "./commands.js"
import { Browser, serve } from "./koaUtils.js"
import { uniquePrefix } from "./utils.js"

interface Logged {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** A logger layer that records every log (Debug and up) into `logs`. */
const recording = (logs: Array<Logged>) =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message, annotations }) => {
        const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
        logs.push({ level: logLevel.label, message: text, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
      })
    ),
    Logger.minimumLogLevel(LogLevel.Debug)
  )

const about = (logs: ReadonlyArray<Logged>) => logs.filter((l) => l.message.includes("maxmemory-policy"))
const warnings = (logs: ReadonlyArray<Logged>) => about(logs).filter((l) => l.level === "WARN")

/** Polls until `f()` is true (bounded; the check is asynchronous by design). */
const until = async (f: () => boolean | Promise<boolean>, what: string) => {
  const deadline = Date.now() + 15_000
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A store runtime over `redis`, logging into `logs`. */
const storeRuntime = (redis: Layer.Layer<RedisClient, unknown>, logs: Array<Logged>) => {
  const runtime = ManagedRuntime.make(
    SessionStore.layer({ prefix: uniquePrefix("eviction"), references: ["user_id"] }).pipe(Layer.provideMerge(redis), Layer.provide(recording(logs)))
  )
  cleanups.push(() => runtime.dispose())
  return runtime
}

/** Some store traffic: writes and reads of fresh sessions. */
const traffic = (runtime: ReturnType<typeof storeRuntime>, count: number) =>
  runtime.runPromise(
    Effect.flatMap(SessionStore, (store) =>
      Effect.forEach(
        Array.from({ length: count }, (_, i) => i),
        (i) =>
          Effect.gen(function* () {
            const id = yield* store.createSessionId
            yield* store.set(id, { user_id: i % 3 })
            expect(yield* store.get(id, ["user_id"])).toEqual({ id, user_id: String(i % 3) })
          }),
        { concurrency: 8, discard: true }
      )
    )
  )

/** A Koa app over the factory; `request()` answers with the status. */
const koaApp = async (options: { readonly redis: string } | { readonly client: Redis }) => {
  const app = new Koa()
  app.keys = ["k"]
  app.silent = true
  const mw = koaRedisSessionSets(app, { ...options, prefix: uniquePrefix("eviction-koa"), references: { user_id: {} } })
  cleanups.push(() => mw.close())
  app.use(mw)
  app.use(async (ctx) => {
    await ctx.session.set({ user_id: 1 })
    ctx.body = await ctx.session.get()
  })
  const served = await serve(app)
  cleanups.push(() => served.close())
  const browser = new Browser(served.url)
  return {
    request: async () => {
      const response = await browser.request("/")
      await response.arrayBuffer()
      return response.status
    }
  }
}

/** What Effect's default logger prints (the Koa factory logs through it) while the test runs. */
const capturePrinted = () => {
  const printed: Array<string> = []
  const log = console.log
  console.log = (...args: Array<unknown>) => {
    const line = args.map(String).join(" ")
    if (line.includes("maxmemory-policy")) printed.push(line)
    else log(...args)
  }
  cleanups.push(() => (console.log = log))
  return printed
}

/**
 * Resolves once a `CONFIG` command to `port` has been answered (published on ioredis'
 * `ioredis:command` tracing channel): the policy check has run, whatever its outcome.
 */
const configAnswered = (port: number) => {
  const channel = tracingChannel<unknown, { readonly command: string; readonly serverPort?: number }>("ioredis:command")
  let answered = false
  const handlers = {
    start: () => {},
    end: () => {},
    asyncStart: () => {},
    asyncEnd: (context: { readonly command: string; readonly serverPort?: number }) => {
      if (context.command === "config" && context.serverPort === port) answered = true
    },
    error: () => {}
  }
  channel.subscribe(handlers)
  cleanups.push(() => channel.unsubscribe(handlers))
  return () => answered
}

const expectTheWarning = (warning: Logged | string, policy: string) => {
  const text = typeof warning === "string" ? warning : warning.message
  expect(text).toContain(`maxmemory-policy is ${policy}, not noeviction`)
  expect(text).toContain("reference sets")
  expect(text).toContain("revoke-all")
  expect(text).toMatch(/README section \\?"Redis configuration\\?"/)
  if (typeof warning !== "string") expect(warning.annotations["redis.maxmemory_policy"]).toBe(policy)
}

describe("maxmemory-policy allkeys-lru", () => {
  let server: RunningRedis
  beforeAll(async () => {
    server = await startRedis({ args: ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it("RedisClient.layer: one warning, through the layer's logger, however many calls", async () => {
    const logs: Array<Logged> = []
    const runtime = storeRuntime(RedisClient.layer(server.url), logs)
    await traffic(runtime, 50)
    await until(() => warnings(logs).length > 0, "a warning")
    await traffic(runtime, 50)
    expect(warnings(logs)).toHaveLength(1)
    expectTheWarning(warnings(logs)[0]!, "allkeys-lru")
    expect(warnings(logs)[0]!.annotations["redis.nodes"]).toBe(`127.0.0.1:${server.port} allkeys-lru`)
  })

  it("one caller-owned client under several stores (layerFromClient, unsafeFromClient, two Koa factories): one warning in all", async () => {
    const client = new Redis(server.url)
    cleanups.push(() => client.disconnect())
    const printed = capturePrinted()
    const logs: Array<Logged> = []
    // Registered before the client is ready: the check runs when it becomes ready.
    expect(client.status).not.toBe("ready")
    const runtimes = [storeRuntime(RedisClient.layerFromClient(client), logs), storeRuntime(RedisClient.layerFromClient(client), logs)]
    for (const runtime of runtimes) await runtime.runtime()
    RedisClient.unsafeFromClient(client)
    const apps = [await koaApp({ client }), await koaApp({ client })]
    for (let round = 0; round < 3; round++) {
      await Promise.all(runtimes.map((runtime) => traffic(runtime, 20)))
      for (const app of apps) for (let i = 0; i < 10; i++) expect(await app.request()).toBe(200)
      if (round === 0) await until(() => warnings(logs).length + printed.length > 0, "a warning")
    }
    // The first store to see the client logs it, on its own runtime: here the first layer.
    expect(warnings(logs)).toHaveLength(1)
    expect(printed).toEqual([])
    expectTheWarning(warnings(logs)[0]!, "allkeys-lru")
    expect((await commandStats(client))["config|get"] ?? 0).toBeGreaterThanOrEqual(1)
  })

  it("the Koa factory: `redis` (its own client) and `client`, each warns once, printed by Effect's default logger", async () => {
    const printed = capturePrinted()
    const owned = await koaApp({ redis: server.url })
    for (let i = 0; i < 30; i++) expect(await owned.request()).toBe(200)
    await until(() => printed.length > 0, "a printed warning")
    for (let i = 0; i < 30; i++) expect(await owned.request()).toBe(200)
    expect(printed).toHaveLength(1)
    expectTheWarning(printed[0]!, "allkeys-lru")
    expect(printed[0]).toMatch(/level=WARN/)

    const client = new Redis(server.url)
    cleanups.push(() => client.disconnect())
    await until(() => client.status === "ready", "the caller's client is ready")
    const callers = await koaApp({ client })
    for (let i = 0; i < 30; i++) expect(await callers.request()).toBe(200)
    await until(() => printed.length > 1, "a second printed warning")
    for (let i = 0; i < 30; i++) expect(await callers.request()).toBe(200)
    expect(printed).toHaveLength(2)
  })
})

describe("maxmemory-policy volatile-lru", () => {
  let server: RunningRedis
  beforeAll(async () => {
    server = await startRedis({ args: ["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it("warns too: the reference sets carry a TTL, so volatile-* evicts them", async () => {
    const logs: Array<Logged> = []
    const runtime = storeRuntime(RedisClient.layer(server.url), logs)
    await traffic(runtime, 20)
    await until(() => warnings(logs).length > 0, "a warning")
    await traffic(runtime, 20)
    expect(warnings(logs)).toHaveLength(1)
    expectTheWarning(warnings(logs)[0]!, "volatile-lru")
  })
})

describe("maxmemory-policy noeviction", () => {
  let server: RunningRedis
  beforeAll(async () => {
    server = await startRedis({ args: ["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it("no warning: the policy is read (a debug log says so) and nothing else is logged about it", async () => {
    const logs: Array<Logged> = []
    const runtime = storeRuntime(RedisClient.layer(server.url), logs)
    await traffic(runtime, 20)
    await until(() => about(logs).length > 0, "the check")
    await traffic(runtime, 20)
    expect(about(logs).map((l) => [l.level, l.message])).toEqual([["DEBUG", "Redis maxmemory-policy is noeviction"]])
  })

  it("no warning through the Koa factory", async () => {
    const printed = capturePrinted()
    const answered = configAnswered(server.port)
    const app = await koaApp({ redis: server.url })
    expect(await app.request()).toBe(200)
    await until(answered, "CONFIG GET answered")
    // The check handles that reply in the microtasks right after it; these requests come later, and must not warn either.
    for (let i = 0; i < 10; i++) expect(await app.request()).toBe(200)
    expect(printed).toEqual([])
  })
})

describe("CONFIG renamed away (--rename-command CONFIG \"\")", () => {
  let server: RunningRedis
  beforeAll(async () => {
    server = await startRedis({ args: ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", ""] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it("no warning and no error: a debug log says the policy was not checked, and requests are served", async () => {
    const logs: Array<Logged> = []
    const runtime = storeRuntime(RedisClient.layer(server.url), logs)
    await traffic(runtime, 20)
    await until(() => about(logs).length > 0, "the check")
    await traffic(runtime, 20)
    expect(about(logs).map((l) => [l.level, l.message])).toEqual([["DEBUG", "Redis maxmemory-policy not checked: CONFIG GET was refused"]])
    expect(String(about(logs)[0]!.annotations["reason"])).toMatch(/unknown command 'CONFIG'/i)
    expect(logs.filter((l) => l.level === "WARN" || l.level === "ERROR")).toEqual([])
  })

  it("through the Koa factory: requests served, nothing printed", async () => {
    const printed = capturePrinted()
    const answered = configAnswered(server.port)
    const app = await koaApp({ redis: server.url })
    expect(await app.request()).toBe(200)
    await until(answered, "CONFIG GET answered (with an error)")
    for (let i = 0; i < 10; i++) expect(await app.request()).toBe(200)
    expect(printed).toEqual([])
  })
})

describe("a Redis Cluster", () => {
  let cluster: RunningCluster
  beforeAll(async () => {
    cluster = await startCluster(3)
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it("every master is read: one warning names the master that evicts; none while all are noeviction", async () => {
    const quiet: Array<Logged> = []
    const first = storeRuntime(RedisClient.layer({ cluster: { nodes: [...cluster.nodes] } }), quiet)
    await first.runPromise(SessionStore)
    await until(() => about(quiet).length > 0, "the check")
    expect(about(quiet).map((l) => l.level)).toEqual(["DEBUG"])
    expect(String(about(quiet)[0]!.annotations["redis.nodes"]).split(", ")).toHaveLength(3)

    const evicting = cluster.nodes[1]!
    const node = new Redis(evicting.port, evicting.host)
    cleanups.push(() => node.disconnect())
    await node.config("SET", "maxmemory-policy", "allkeys-lfu")
    cleanups.push(() => node.config("SET", "maxmemory-policy", "noeviction"))
    const logs: Array<Logged> = []
    const runtime = storeRuntime(RedisClient.layer({ cluster: { nodes: [cluster.nodes[0]!] } }), logs)
    await traffic(runtime, 20)
    await until(() => warnings(logs).length > 0, "a warning")
    await traffic(runtime, 20)
    expect(warnings(logs)).toHaveLength(1)
    expectTheWarning(warnings(logs)[0]!, "allkeys-lfu")
    expect(warnings(logs)[0]!.annotations["redis.nodes"]).toBe(`${evicting.host}:${evicting.port} allkeys-lfu`)
    const client = (await runtime.runPromise(RedisClient)).client
    expect(client).toBeInstanceOf(Cluster)
  })
})

