#!/usr/bin/env node
// In-process A/B of Koa stacks: each app's `app.callback()` called with node's own
// IncomingMessage / ServerResponse (no socket, no HTTP parser, no load generator), in
// alternating batches against a real redis-server. Reported per stack: the median CPU
// µs/request over batches, and per stack the median over adjacent batch pairs of
// baseline CPU / stack CPU (a CPU-bound server's throughput ratio). It leaves out the
// node:http work every stack shares, so ratios are stricter than the HTTP benchmark's.
//   node bench/koa-ab.mjs [--stacks raw,lib,effect] [--baseline raw] [--batches 16]
//                         [--requests 4000] [--concurrency 50] [--flows read,write] [--signed] [--old DIST]
// Stacks: floor (one HGETALL of a fixed key, no cookie), raw (bench/servers/ioredis-raw.mjs),
// lib (ctx.session), capped, rolling (lib with account controls), effect (SessionMiddleware.run),
// fiber (the least an Effect in Koa costs); "<stack>@old" runs it on the build in --old.
// `--stacks effect` alone runs one stack, for `node --cpu-prof bench/koa-ab.mjs`.
import { IncomingMessage, ServerResponse } from "node:http"
import { Socket } from "node:net"
import { parseArgs } from "node:util"
import path from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Runtime } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import { startRedis } from "../scripts/redis-server.mjs"
import { cpuPerCall } from "./lib/batch.mjs"
import { importLibrary } from "./lib/library.mjs"
import { median } from "./lib/report.mjs"
import { KEYS, MAX_AGE, PREFIX, PROFILE, RAW_WRITE_SCRIPT, rawLogin } from "./servers/common.mjs"

const { values: args } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    stacks: { type: "string", default: "raw,lib,effect" },
    baseline: { type: "string", default: "raw" },
    batches: { type: "string", default: "16" },
    requests: { type: "string", default: "4000" },
    concurrency: { type: "string", default: "50" },
    flows: { type: "string", default: "read,write" },
    signed: { type: "boolean", default: false },
    // A second build (a dist/ directory) for A/B of a change: stacks named "<stack>@old" use it.
    old: { type: "string" }
  }
})
const BATCHES = Math.max(2, Math.round(Number(args.batches)))
const REQUESTS = Math.max(100, Math.round(Number(args.requests)))
const C = Math.max(1, Math.round(Number(args.concurrency)))
const FLOWS = args.flows.split(",").filter((f) => f === "read" || f === "write")
const NAMES = args.stacks.split(",")

const redis = args["redis-url"] ? undefined : await startRedis()
const url = args["redis-url"] ?? redis.url
const libraries = {
  "": await importLibrary(),
  ...(args.old ? { "@old": await import(pathToFileURL(path.resolve(args.old, "index.js")).href) } : {})
}
const clients = []
const newClient = () => {
  const client = new Redis(url)
  clients.push(client)
  return client
}

let counter = 0
const nextUser = () => 1_000_000 + ++counter

// raw ioredis in Koa: the ceiling of bench/servers/ioredis-raw.mjs (signed: false only).
const rawApp = async () => {
  const client = newClient()
  const sha = await client.script("LOAD", RAW_WRITE_SCRIPT)
  const app = new Koa()
  const COOKIE = "session-id"
  const cookieOptions = { signed: false, httpOnly: true, sameSite: "lax", overwrite: true, path: "/", maxAge: MAX_AGE }
  app.use(async (ctx) => {
    const id = ctx.path === "/login" ? undefined : ctx.cookies.get(COOKIE, { signed: false })
    switch (ctx.path) {
      case "/read":
        ctx.body = id === undefined ? {} : await client.hgetall(`${PREFIX}:{${id}}`)
        return
      case "/write":
        await client.evalsha(sha, 2, `${PREFIX}:{${id}}`, `${PREFIX}:`, id, String(nextUser()), MAX_AGE)
        ctx.cookies.set(COOKIE, id, cookieOptions)
        ctx.body = "ok"
        return
      case "/login": {
        const login = await rawLogin(client)
        ctx.cookies.set(COOKIE, login.id, cookieOptions)
        ctx.body = "ok"
      }
    }
  })
  return { app, close: async () => {} }
}

// The stricter floor of issue 15: one HGETALL of a fixed key, no cookie work at all.
const floorApp = async () => {
  const client = newClient()
  const { id } = await rawLogin(client)
  const key = `${PREFIX}:{${id}}`
  const app = new Koa()
  app.use(async (ctx) => {
    ctx.body = await client.hgetall(key)
  })
  return { app, close: async () => {} }
}

const CONTROLS = {
  rolling: { rolling: true },
  capped: { references: { user_id: { maxSessions: 5 } }, track: { userAgent: true, ip: true } }
}
const libraryStack = (kind, controls, library) => () => {
  const app = new Koa()
  if (args.signed) app.keys = KEYS
  const SessionMiddleware = library.default(app, {
    client: newClient(),
    prefix: PREFIX,
    references: { user_id: {} },
    ...(args.signed ? {} : { signed: false }),
    ...CONTROLS[controls]
  })
  app.use(SessionMiddleware)
  const { Session } = library
  const values = (ctx) => (ctx.path === "/login" ? { user_id: nextUser(), ...PROFILE } : { user_id: nextUser() })
  const respond = async (ctx, body) => {
    ctx.body = ctx.path === "/read" ? await body : (await body, "ok")
  }
  const handlers = {
    // ctx.session, the Promise facade.
    lib: (ctx) => respond(ctx, ctx.path === "/read" ? ctx.session.get() : ctx.session.set(values(ctx))),
    // SessionMiddleware.run with the Effect Session, as bench/servers/lib-effect.mjs.
    effect: (ctx) => {
      const written = values(ctx)
      const effect = Effect.gen(function* () {
        const session = yield* Session
        return ctx.path === "/read" ? yield* session.get() : yield* session.set(written)
      })
      return respond(ctx, SessionMiddleware.run(ctx, effect))
    },
    // The least an Effect in Koa costs: ctx.session's Promise in an Effect.gen on a fiber
    // of Effect's default runtime (no Session service, no interruption wiring).
    fiber: (ctx) => {
      const written = values(ctx)
      const effect = Effect.gen(function* () {
        return yield* Effect.promise(() => (ctx.path === "/read" ? ctx.session.get() : ctx.session.set(written)))
      })
      return respond(ctx, new Promise((resolve) => Runtime.runFork(Runtime.defaultRuntime, effect).addObserver((exit) => resolve(exit.value))))
    }
  }
  app.use(handlers[kind])
  return { app, close: () => SessionMiddleware.close() }
}

// "<stack>@old": the same stack on the --old build.
const builderOf = (name) => {
  const [stack, build = ""] = name.split(/(?=@)/)
  const library = libraries[build]
  if (library === undefined) throw new Error(`${name}: no --old build given`)
  const [kind, controls] = { lib: ["lib"], capped: ["lib", "capped"], rolling: ["lib", "rolling"], effect: ["effect"], fiber: ["fiber"] }[stack] ?? []
  if (stack === "floor") return floorApp
  if (stack === "raw") return rawApp
  if (kind === undefined) throw new Error(`unknown stack ${name}`)
  return libraryStack(kind, controls, library)
}
const socket = new Socket()
// What a browser sends besides the cookie (the tracked stacks store the user agent).
const HEADERS = { host: "127.0.0.1", "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36" }

// One request through `handler`; resolves with the response once Koa has answered.
const request = async (handler, path, cookie) => {
  const req = new IncomingMessage(socket)
  req.method = "GET"
  req.url = path
  req.headers = cookie === undefined ? { ...HEADERS } : { ...HEADERS, cookie }
  const res = new ServerResponse(req)
  await handler(req, res)
  if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}`)
  return res
}

const stacks = {}
for (const name of NAMES) {
  const built = await builderOf(name)()
  const handler = built.app.callback()
  const cookies = []
  for (let i = 0; i < C; i++) {
    const res = await request(handler, "/login")
    const setCookie = res.getHeader("set-cookie")
    cookies.push(setCookie === undefined ? "" : [].concat(setCookie).map((line) => line.split(";")[0]).join("; "))
  }
  stacks[name] = { handler, cookies, close: built.close }
}

const batch = async (name, flow) => {
  const { handler, cookies } = stacks[name]
  return cpuPerCall(cookies, Math.ceil(REQUESTS / C), (cookie) => request(handler, `/${flow}`, cookie))
}

try {
  for (const flow of FLOWS) {
    for (const name of NAMES) await batch(name, flow)
    const cpu = Object.fromEntries(NAMES.map((n) => [n, []]))
    const ratios = Object.fromEntries(NAMES.map((n) => [n, []]))
    for (let b = 0; b < BATCHES; b++) {
      const order = b % 2 === 0 ? NAMES : [...NAMES].reverse()
      const round = {}
      for (const name of order) cpu[name].push((round[name] = await batch(name, flow)))
      if (round[args.baseline] !== undefined) for (const name of NAMES) ratios[name].push(round[args.baseline] / round[name])
    }
    const line = NAMES.map((n) => {
      const ratio = ratios[n].length ? ` (${median(ratios[n]).toFixed(3)}× ${args.baseline})` : ""
      return `${n} ${median(cpu[n]).toFixed(1)} µs${ratio}`
    })
    console.log(`${flow.padEnd(5)}  ${line.join("  ")}`)
  }
} finally {
  for (const { close } of Object.values(stacks)) await close()
  for (const client of clients) await client.quit()
  await redis?.stop()
}
