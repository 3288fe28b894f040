// Shared by every benchmark server. A server is forked by bench/run.mjs with IPC,
// listens on an ephemeral 127.0.0.1 port, reports { type: "ready", port } and
// exits cleanly on { type: "stop" } or SIGTERM (so `--cpu-prof` can write its profile).
//
// Routes, the same on every stack:
//   GET /login  creates a session with SESSION_FIELDS (a fresh user_id) and sends its cookie
//   GET /read   READ flow: reads the whole session and responds with it as JSON
//   GET /write  WRITE flow: sets user_id (a referenced field) to a new value, responds "ok"
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
import { Cluster, Redis } from "ioredis"
import Koa from "koa"
import { importLibrary } from "../lib/library.mjs"

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
// The cluster stacks' start-up nodes (bench/run.mjs starts a 3-master cluster for them): "host:port,…".
export const CLUSTER_NODES = (process.env.BENCH_CLUSTER_NODES ?? "").split(",").filter(Boolean).map((node) => {
  const [host, port] = node.split(":")
  return { host, port: Number(port) }
})
export const PREFIX = process.env.BENCH_PREFIX ?? "bench"
export const SIGNED = process.env.BENCH_SIGNED === "1"
export const KEYS = ["bench key, do not use in production"]
export const MAX_AGE = 28 * 24 * 60 * 60 * 1000

/**
 * The Koa app every stack of this library starts from: its own ioredis client (a `Cluster`
 * over CLUSTER_NODES with BENCH_CLUSTER=1), the session middleware (signed per BENCH_SIGNED)
 * installed. Routes are the caller's.
 * `close` releases the middleware and quits the client.
 */
// BENCH_CONTROLS: issue 13's account controls, against the same stack without them.
const CONTROLS = {
  none: {},
  rolling: { rolling: true },
  capped: { references: { user_id: { maxSessions: 5 } }, track: { userAgent: true, ip: true } }
}

export const libraryApp = async () => {
  const library = await importLibrary()
  const client = process.env.BENCH_CLUSTER === "1" ? new Cluster(CLUSTER_NODES) : new Redis(REDIS_URL)
  client.on("error", () => {})
  const app = new Koa()
  if (SIGNED) app.keys = KEYS
  const SessionMiddleware = library.default(app, {
    client,
    prefix: PREFIX,
    references: { user_id: {} },
    ...(SIGNED ? {} : { signed: false }),
    ...CONTROLS[process.env.BENCH_CONTROLS ?? "none"]
  })
  app.use(SessionMiddleware)
  const close = async () => {
    await SessionMiddleware.close()
    await client.quit()
  }
  return { library, app, SessionMiddleware, close }
}

/**
 * The ceilings' WRITE (ioredis-raw, platform-raw): one script doing the library's work for
 * this write without its generality. KEYS: the hash, the key base; ARGV: id, new user_id,
 * TTL. Reads the old user_id, moves the id between the value sets, writes and extends all.
 */
export const RAW_WRITE_SCRIPT = `
local old = redis.call('HGET', KEYS[1], 'user_id')
if old and old ~= ARGV[2] then redis.call('SREM', KEYS[2] .. 'user_id:{' .. old .. '}', ARGV[1]) end
redis.call('HSET', KEYS[1], 'user_id', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local set = KEYS[2] .. 'user_id:{' .. ARGV[2] .. '}'
redis.call('SADD', set, ARGV[1])
redis.call('PEXPIRE', set, ARGV[3])
return 1
`

/**
 * The ceilings' /login (ioredis-raw, platform-raw): a fresh session with PROFILE and a new
 * user_id, in the library's key layout, in one MULTI. Returns the id and its user_id.
 */
export const rawLogin = async (client) => {
  const id = randomBytes(18).toString("base64url")
  const userId = String(nextLoginUser())
  const hash = `${PREFIX}:{${id}}`
  const set = `${PREFIX}:user_id:{${userId}}`
  await client.multi().hset(hash, { id, user_id: userId, ...PROFILE }).pexpire(hash, MAX_AGE).sadd(set, id).pexpire(set, MAX_AGE).exec()
  return { id, userId }
}

// The fields of a logged-in session (besides `id` and user_id).
export const PROFILE = { name: "Ada Lovelace", email: "ada@example.com", role: "admin", locale: "en-GB" }

let loginCounter = 0
/** A fresh user id for each /login. */
export const nextLoginUser = () => 1000 + ++loginCounter

let writeCounter = 0
/** A new user_id for each WRITE request: never the value a session already holds. */
export const nextWriteUser = () => 1_000_000 + ++writeCounter

/** Serves `handler` (a `(req, res)` listener) and wires the IPC protocol. `cleanup` runs before exit. */
export const serve = (handler, cleanup = async () => {}) => {
  const server = createServer(handler)
  // The load generator keeps its connections open; no per-request timeouts get in the way.
  server.keepAliveTimeout = 60_000
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address()
    if (process.send) process.send({ type: "ready", port })
    else console.log(`listening on http://127.0.0.1:${port}`)
  })
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    server.closeAllConnections?.()
    server.close()
    try {
      await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 2_000))])
    } finally {
      process.exit(0)
    }
  }
  process.on("message", (message) => {
    if (message?.type === "stop") void stop()
    // CPU accounting: the runner samples this process's CPU time around the measured window.
    else if (message?.type === "cpu") process.send({ type: "cpu", usage: process.cpuUsage() })
    // The speed of this process's CPU right now (the runner compares it across measurements).
    else if (message?.type === "probe") process.send({ type: "probe", millis: speedProbe() })
  })
  process.on("SIGTERM", () => void stop())
  process.on("SIGINT", () => void stop())
  process.on("disconnect", () => void stop())
}

// A fixed piece of JavaScript work, timed: the least of five runs, in ms. The host of
// a small VM can slow its vCPUs down twofold for minutes at a time, unseen from inside
// (no steal time is reported); this is how the runner notices.
let probeSink = 0
const speedProbe = () => {
  let best = Infinity
  for (let run = 0; run < 5; run++) {
    const start = performance.now()
    for (let i = 0; i < 4_000; i++) {
      const text = JSON.stringify({ i, user_id: String(1000 + i), name: "Ada Lovelace", roles: ["admin", "user"] })
      probeSink = (probeSink + JSON.parse(text).i + text.length) | 0
    }
    best = Math.min(best, performance.now() - start)
  }
  return best
}
