// A session id is a bearer credential, and a session's values (the CSRF secret among
// them) are the user's: none of them may reach a RedisError's printable forms. ioredis
// attaches the whole command to its errors (`err.command.args`); RedisError keeps a copy
// of the cause without it. Writes here fail for real: a dedicated redis-server pinned
// over its `maxmemory` under `noeviction` (OOM), one where EVALSHA and HGETALL are
// renamed away (Redis then echoes the arguments in its reply), and a closed port.
// The last part shows what ioredis publishes on its `ioredis:command` tracing channel.
import { randomBytes } from "node:crypto"
import { connect, createServer } from "node:net"
import { tracingChannel } from "node:diagnostics_channel"
import { inspect } from "node:util"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { Redis, ReplyError } from "ioredis"
import Koa from "koa"
import { freePort, startRedis, type RunningRedis } from "../scripts/redis-server.mjs"
import koaRedisSessionSets, { CSRF_SECRET_FIELD, RedisClient, RedisError, SessionStore } from "../src/index.js"
import * as LuaScript from "../src/LuaScript.js"
import { Browser, serve } from "./koaUtils.js"
import { redisUrl, uniquePrefix } from "./utils.js"

const MAXMEMORY = "2mb"

/** A session whose every part is known, so its text can be searched for. */
const secrets = () => {
  const tag = randomBytes(6).toString("hex")
  const id = `sid${tag}${randomBytes(9).toString("base64url")}`
  const values = {
    user_id: `user-${tag}-${randomBytes(4).toString("hex")}`,
    name: `name-${tag}-${randomBytes(4).toString("hex")}`,
    [CSRF_SECRET_FIELD]: `csrf-${tag}-${randomBytes(8).toString("hex")}`
  }
  return { id, values, needles: [id, ...Object.values(values)] }
}

/** Every printable form of a failure: the error, its cause, and the Effect Cause around it. */
const printedForms = (error: unknown, cause?: Cause.Cause<unknown>): Record<string, string> => {
  const redisError = error as RedisError
  const forms: Record<string, string> = {
    inspect: inspect(error, { depth: Infinity }),
    inspectHidden: inspect(error, { depth: Infinity, showHidden: true }),
    json: JSON.stringify(error),
    string: String(error),
    stack: String(redisError.stack),
    message: redisError.message,
    causeInspect: inspect(redisError.cause, { depth: Infinity, showHidden: true }),
    causeJson: JSON.stringify(redisError.cause),
    causeStack: String((redisError.cause as Error).stack),
    pretty: Cause.pretty(cause ?? Cause.fail(error)),
    prettyWithCauses: Cause.pretty(cause ?? Cause.fail(error), { renderErrorCause: true })
  }
  return forms
}

const expectNoSecret = (error: unknown, needles: ReadonlyArray<string>, cause?: Cause.Cause<unknown>) => {
  expect(error).toBeInstanceOf(RedisError)
  for (const [form, text] of Object.entries(printedForms(error, cause))) {
    for (const needle of needles) expect(text.includes(needle), `${form} shows ${needle}:\n${text}`).toBe(false)
  }
}

/** `CONFIG SET maxmemory` just under what the server uses now: the next write that can grow memory fails. */
const pinOverLimit = async (client: Redis) => {
  const used = Number((await client.info("memory")).match(/^used_memory:(\d+)/m)![1])
  await client.config("SET", "maxmemory", String(used - 64 * 1024))
}

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const runtimeOver = (url: string, prefix: string) => {
  const runtime = ManagedRuntime.make(SessionStore.layer({ prefix, references: ["user_id"] }).pipe(Layer.provide(RedisClient.layer(url))))
  cleanups.push(() => runtime.dispose())
  return runtime
}

describe("a write refused by Redis (OOM under noeviction)", () => {
  let server: RunningRedis
  let raw: Redis
  beforeAll(async () => {
    server = await startRedis({ args: ["--maxmemory", MAXMEMORY, "--maxmemory-policy", "noeviction"] })
    raw = new Redis(server.url)
  })
  afterAll(async () => {
    raw?.disconnect()
    await server?.stop()
  })
  afterEach(async () => {
    await raw.config("SET", "maxmemory", MAXMEMORY)
  })

  it("the Effect store: neither the id nor any value nor the CSRF secret is in the error, its cause, or Cause.pretty", async () => {
    const runtime = runtimeOver(server.url, uniquePrefix("secrets-effect"))
    const { id, values, needles } = secrets()
    await pinOverLimit(raw)
    const exit = await runtime.runPromiseExit(Effect.flatMap(SessionStore, (store) => store.set(id, values)))
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause) as RedisError
    // A real OOM, and what it keeps of it: kind, message, code.
    expect(error.operation).toBe("SessionStore.set")
    expect(error.cause).toBeInstanceOf(ReplyError)
    expect((error.cause as Error).name).toBe("ReplyError")
    expect((error.cause as Error).message).toMatch(/^OOM command not allowed when used memory > 'maxmemory'/)
    expect(error.message).toMatch(/^Redis SessionStore\.set failed: OOM command not allowed/)
    expectNoSecret(error, needles, (exit as Exit.Failure<unknown, unknown>).cause)
    expect(Object.keys(error.cause as object)).not.toContain("command")
    expect(JSON.parse(JSON.stringify(error))).toMatchObject({
      _tag: "RedisError",
      operation: "SessionStore.set",
      message: error.message,
      cause: { name: "ReplyError", message: (error.cause as Error).message }
    })
    expect(await raw.exists(`${(await runtime.runPromise(SessionStore)).getSessionKey(id)}`)).toBe(0)
  })

  it("an update of an existing session, through the Promise store", async () => {
    const mw = koaRedisSessionSets({ keys: ["k"] }, { client: raw, prefix: uniquePrefix("secrets-store"), references: { user_id: {} } })
    cleanups.push(() => mw.close())
    const { id, values, needles } = secrets()
    await mw.store.set(id, { user_id: values.user_id })
    await pinOverLimit(raw)
    const error = await mw.store.set(id, values).then(
      () => expect.fail("the write succeeded"),
      (e: unknown) => e
    )
    expect((error as RedisError).message).toMatch(/OOM command not allowed/)
    expectNoSecret(error, needles)
  })

  it("through the Koa facade: the error Koa emits, and what Koa's default handler prints, show none of them", async () => {
    const app = new Koa()
    app.keys = ["k"]
    const errors: Array<unknown> = []
    app.on("error", (error: unknown) => errors.push(error))
    const mw = koaRedisSessionSets(app, { client: raw, prefix: uniquePrefix("secrets-koa"), references: { user_id: {} } })
    cleanups.push(() => mw.close())
    const session = secrets()
    const ids: Array<string> = []
    app.use(mw)
    app.use(async (ctx) => {
      ids.push(ctx.session.getKey())
      await ctx.session.set(session.values)
      ctx.body = "written"
    })
    const served = await serve(app)
    cleanups.push(() => served.close())
    await pinOverLimit(raw)
    const response = await new Browser(served.url).request("/")
    await response.arrayBuffer()
    expect(response.status).toBe(503)
    expect(errors).toHaveLength(1)
    expect((errors[0] as RedisError).message).toMatch(/OOM command not allowed/)
    // The key names the library's own id for this request: look for it too.
    const key = ids[0]!
    const id = key.slice(key.indexOf("{") + 1, -1)
    expect(id.length).toBeGreaterThanOrEqual(16)
    const needles = [id, key, ...Object.values(session.values)]
    expectNoSecret(errors[0], needles)
    // What Koa's default error handler would print for it.
    const printed: Array<string> = []
    const consoleError = console.error
    console.error = (...args: Array<unknown>) => void printed.push(args.map(String).join(" "))
    try {
      Koa.prototype.onerror.call(app, errors[0] as Error)
    } finally {
      console.error = consoleError
    }
    expect(printed.join("\n")).toContain("OOM command not allowed")
    for (const needle of needles) expect(printed.join("\n")).not.toContain(needle)
  })
})

describe("Redis replies that echo the arguments (EVALSHA and HGETALL renamed away)", () => {
  let server: RunningRedis
  beforeAll(async () => {
    server = await startRedis({ args: ["--rename-command", "EVALSHA", "", "--rename-command", "HGETALL", ""] })
  })
  afterAll(async () => {
    await server?.stop()
  })

  it("the message keeps Redis' error up to the arguments, and the key, id and values are gone", async () => {
    const prefix = uniquePrefix("secrets-echo")
    const runtime = runtimeOver(server.url, prefix)
    const { id, values, needles } = secrets()
    const key = `${prefix}:{${id}}`
    for (const operation of [
      Effect.flatMap(SessionStore, (store) => store.set(id, values)),
      Effect.flatMap(SessionStore, (store) => store.get(id))
    ]) {
      const exit = await runtime.runPromiseExit(operation)
      const error = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause) as RedisError
      expect(error).toBeInstanceOf(RedisError)
      expect(error.message).toMatch(/ERR unknown command '(evalsha|hgetall)', with args beginning with: \(arguments removed\)$/)
      expectNoSecret(error, [...needles, key], (exit as Exit.Failure<unknown, unknown>).cause)
    }
    // Without the cut, Redis itself echoes them (checked on a raw client).
    const raw = new Redis(server.url)
    cleanups.push(() => raw.disconnect())
    const echoed = await raw.hgetall(key).catch((e: Error) => e.message)
    expect(echoed).toContain(id)
  })
})

describe("errors raised by redis.call inside a script", () => {
  it("name the script and its line, never the arguments (checked on Redis' own reply)", async () => {
    const raw = new Redis(redisUrl())
    cleanups.push(() => raw.disconnect())
    const { id, values, needles } = secrets()
    const stringKey = `${uniquePrefix("secrets-lua")}:{${id}}`
    await raw.set(stringKey, "a string, not a hash")
    const scripts = [
      // WRONGTYPE on a key named by the id, with the values as fields.
      LuaScript.make("wrongType", 1, "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])"),
      // A value where Redis wants an integer.
      LuaScript.make("notAnInteger", 1, "return redis.call('PEXPIRE', KEYS[1], ARGV[1])"),
      // A syntax error after a value.
      LuaScript.make("syntax", 1, "return redis.call('SET', KEYS[1], ARGV[1], 'NOSUCHOPTION', ARGV[2])"),
      // A command Redis does not know, with values.
      LuaScript.make("unknown", 1, "return redis.call('NOSUCHCOMMAND', KEYS[1], ARGV[1])"),
      // A Lua runtime error next to the values.
      LuaScript.make("runtime", 1, "local v = ARGV[1] .. ARGV[2]; return v + 1")
    ]
    const args = [values.user_id, values[CSRF_SECRET_FIELD], values.name]
    for (const script of scripts) {
      const reply = await LuaScript.evaluate(raw, script, [stringKey], args).then(
        () => expect.fail(`${script.name} succeeded`),
        (e: unknown) => e as Error
      )
      expect(reply, script.name).toBeInstanceOf(ReplyError)
      expect(reply.message, script.name).toMatch(/@user_script:\d+/)
      for (const needle of [...needles, stringKey]) expect(reply.message.includes(needle), `${script.name}: ${reply.message}`).toBe(false)
      // ioredis still attaches them to the error: RedisError is what drops them.
      expect(JSON.stringify((reply as Error & { command?: unknown }).command)).toContain(values[CSRF_SECRET_FIELD])
      expectNoSecret(new RedisError({ operation: script.name, cause: reply }), [...needles, stringKey])
    }
  })
})

/**
 * A TCP relay to a real redis-server. After `cut()`, the client receives the first line of
 * Redis' next reply and nothing more, then its connection is closed cleanly: what a
 * connection lost between two replies looks like to ioredis.
 */
const relay = async (target: RunningRedis) => {
  const port = await freePort()
  const sockets = new Set<import("node:net").Socket>()
  let cutting = false
  const server = createServer((client) => {
    const upstream = connect(target.port, "127.0.0.1")
    sockets.add(client).add(upstream)
    client.on("data", (chunk) => upstream.write(chunk))
    upstream.on("data", (chunk: Buffer) => {
      if (!cutting) return void client.write(chunk)
      const end = chunk.indexOf("\r\n")
      client.end(end < 0 ? chunk : chunk.subarray(0, end + 2))
      upstream.destroy()
    })
    for (const socket of [client, upstream]) socket.on("error", () => {})
    client.on("close", () => upstream.destroy())
  })
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
  return {
    port,
    cut: () => void (cutting = true),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

describe("a connection error", () => {
  it("ioredis' AbortError for pipelined commands cut off by a closed connection loses the arguments it carries; a refused connection keeps what names it", async () => {
    const server = await startRedis()
    cleanups.push(() => server.stop())
    const proxy = await relay(server)
    cleanups.push(() => proxy.close())
    // Auto-pipelining (an application's choice): concurrent calls go out as one pipeline,
    // and ioredis aborts the rest of a pipeline whose first reply came before the close.
    const client = new Redis(proxy.port, "127.0.0.1", { enableAutoPipelining: true, retryStrategy: () => null })
    client.on("error", () => {})
    cleanups.push(() => client.disconnect())
    const mw = koaRedisSessionSets({ keys: ["k"] }, { client, prefix: uniquePrefix("secrets-abort"), references: { user_id: {} } })
    cleanups.push(() => mw.close())
    const sessions = [secrets(), secrets(), secrets()]
    // Scripts loaded first, so each write is one EVALSHA with an integer reply.
    for (const { id, values } of sessions) await mw.store.set(id, values)
    proxy.cut()
    const outcomes = await Promise.allSettled(sessions.map(({ id, values }) => mw.store.set(id, { ...values, name: `${values.name}-2` })))
    const failures = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as RedisError] : []))
    expect(failures.length).toBeGreaterThan(0)
    const aborted = failures.filter((e) => (e.cause as Error).name === "AbortError")
    expect(aborted.length).toBeGreaterThan(0)
    for (const error of aborted) {
      expect(error.message).toBe("Redis SessionStore.set failed: Command aborted due to connection close")
      expectNoSecret(error, sessions.flatMap((s) => [...s.needles, `${s.values.name}-2`]))
    }

    // A refused connection: what names the failure (kind, code, syscall, address, port) is kept.
    const port = await freePort()
    const prefix = uniquePrefix("secrets-down")
    const down = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 0, retryStrategy: () => 200 })
    down.on("error", () => {})
    cleanups.push(() => down.disconnect())
    const downMw = koaRedisSessionSets({ keys: ["k"] }, { client: down, prefix, references: { user_id: {} }, timeout: 10_000 })
    cleanups.push(() => downMw.close())
    const { id, values, needles } = secrets()
    for (const attempt of [() => downMw.store.set(id, values), () => downMw.store.get(id), () => downMw.store.set(id, values)]) {
      const error = (await attempt().then(
        () => expect.fail("Redis answered on a closed port"),
        (e: unknown) => e
      )) as RedisError
      const cause = error.cause as NodeJS.ErrnoException & { address?: string; port?: number }
      expect(cause).toBeInstanceOf(Error)
      expect(cause.name).toMatch(/Error$/)
      expect(cause.code).toBe("ECONNREFUSED")
      expect(cause.syscall).toBe("connect")
      expect(cause.address).toBe("127.0.0.1")
      expect(cause.port).toBe(port)
      expect(error.message).toBe(`Redis ${error.operation} failed: cannot connect to 127.0.0.1:${port} (ECONNREFUSED)`)
      expectNoSecret(error, [...needles, `${prefix}:{${id}}`])
    }
  })
})

// ---- What ioredis 6 publishes on node:diagnostics_channel ----

interface CommandContext {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly serverAddress?: string
  readonly error?: unknown
}

/** Subscribes to `ioredis:command` for the duration of `f`; the contexts published (start events), and the errors. */
const traced = async (f: () => Promise<unknown>): Promise<{ started: Array<CommandContext>; failed: Array<CommandContext> }> => {
  const channel = tracingChannel<unknown, CommandContext>("ioredis:command")
  const started: Array<CommandContext> = []
  const failed: Array<CommandContext> = []
  const handlers = {
    start: (context: CommandContext) => void started.push({ ...context, args: [...context.args] }),
    end: () => {},
    asyncStart: () => {},
    asyncEnd: () => {},
    error: (context: CommandContext) => void failed.push(context)
  }
  channel.subscribe(handlers)
  try {
    await f()
  } finally {
    channel.unsubscribe(handlers)
  }
  return { started, failed }
}

describe("ioredis' `ioredis:command` tracing channel (what the README says about it)", () => {
  it("publishes script calls with all their arguments, and failed commands' errors with `command.args`; RedisError has none of it", async () => {
    // Successful calls, on the suite's server: what every subscriber sees.
    const runtime = runtimeOver(redisUrl(), uniquePrefix("secrets-trace"))
    const store = await runtime.runPromise(SessionStore)
    const { id, values } = secrets()
    const key = store.getSessionKey(id)
    const { started } = await traced(async () => {
      await runtime.runPromise(store.set(id, values))
      await runtime.runPromise(store.get(id))
      await runtime.runPromise(store.get(id, ["user_id"]))
      await runtime.runPromise(store.delete(id))
    })
    const commands = started.map((c) => c.command)
    expect(commands).toContain("evalsha")
    expect(commands).toContain("hgetall")
    for (const context of started) {
      expect(Object.keys(context).sort()).toEqual(["args", "command", "database", "serverAddress", "serverPort"])
      expect(context.serverAddress).toBe("127.0.0.1")
    }
    // Scripts (EVALSHA, and EVAL on NOSCRIPT): every argument, in clear.
    const scriptArgs = started.filter((c) => c.command === "evalsha" || c.command === "eval").flatMap((c) => c.args).join(" ")
    expect(scriptArgs).toContain(key)
    expect(scriptArgs).toContain(id)
    for (const value of Object.values(values)) expect(scriptArgs).toContain(value)
    // HGETALL: ioredis replaces its arguments with "?"; HMGET is published as is (the key, with the id).
    expect(started.find((c) => c.command === "hgetall")!.args).toEqual(["?"])
    const hmget = started.find((c) => c.command === "hmget")!
    expect(hmget.args[0]).toBe(key)
    expect(hmget.args).toContain("user_id")

    // A failed write, on a fresh server over its maxmemory: EVALSHA fails with NOSCRIPT,
    // then the EVAL fallback with OOM. Both errors are published as ioredis made them.
    const server = await startRedis({ args: ["--maxmemory", MAXMEMORY, "--maxmemory-policy", "noeviction"] })
    cleanups.push(() => server.stop())
    const raw = new Redis(server.url)
    cleanups.push(() => raw.disconnect())
    const full = runtimeOver(server.url, uniquePrefix("secrets-trace-error"))
    const fullStore = await full.runPromise(SessionStore)
    const session = secrets()
    await pinOverLimit(raw)
    let error: unknown
    const { failed } = await traced(async () => {
      const exit = await full.runPromiseExit(fullStore.set(session.id, session.values))
      error = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)
    })
    const published = failed.map((c) => c.error as Error & { command?: { name: string; args: Array<unknown> } })
    expect(published.map((e) => e.message.split(" ")[0])).toEqual(["NOSCRIPT", "OOM"])
    for (const e of published) {
      expect(e).toBeInstanceOf(ReplyError)
      const publishedArgs = JSON.stringify(e.command?.args)
      expect(publishedArgs).toContain(session.values[CSRF_SECRET_FIELD])
      expect(publishedArgs).toContain(session.id)
    }
    // What the library fails with, meanwhile, has none of it.
    expectNoSecret(error, session.needles)
  })
})
