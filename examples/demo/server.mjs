// `npm run demo`: the demo app on http://127.0.0.1:3000 (PORT=N or --port N for another;
// 0 picks a free one). Sessions live in an in-process memory store, or in Redis when
// REDIS_URL is set (DEMO_PREFIX: their key prefix, "koa-demo" by default). Ctrl-C stops it.
import { createServer } from "node:http"
import { parseArgs } from "node:util"
import { Effect } from "effect"
import { SessionStore } from "koa-redis-session-sets"
import { createDemoApp, STORE_OPTIONS } from "./app.mjs"

const usage = "usage: npm run demo [-- --port N]   (env: PORT, REDIS_URL, DEMO_PREFIX)"

const fail = (message, code = 2) => {
  console.error(message)
  process.exit(code)
}

let args
try {
  args = parseArgs({ options: { port: { type: "string" }, help: { type: "boolean", short: "h" } } }).values
} catch (error) {
  fail(`${error.message}\n${usage}`)
}
if (args.help) fail(usage, 0)
const portText = args.port ?? process.env.PORT ?? "3000"
if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535)
  fail(`--port/PORT must be a port number (0 to 65535), got ${JSON.stringify(portText)}\n${usage}`)

const storeOptions = { ...STORE_OPTIONS, prefix: process.env.DEMO_PREFIX || STORE_OPTIONS.prefix }
const redisUrl = process.env.REDIS_URL

/** "host:port" of a Redis URL: never its user name or password. */
const redisAddress = (url) => {
  let parsed
  try {
    parsed = new URL(url)
  } catch {
    fail("REDIS_URL must be a redis:// or rediss:// URL")
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") fail("REDIS_URL must be a redis:// or rediss:// URL")
  return `${parsed.hostname || "127.0.0.1"}:${parsed.port || "6379"}${parsed.protocol === "rediss:" ? " (TLS)" : ""}`
}

const storeLabel = redisUrl ? `Redis at ${redisAddress(redisUrl)}` : "memory store"
const { app, mw } = redisUrl
  ? createDemoApp({ redis: redisUrl, prefix: storeOptions.prefix }, storeLabel)
  : createDemoApp({ store: Effect.runSync(SessionStore.makeMemory(storeOptions)) }, storeLabel)
const storeText = redisUrl ? storeLabel : `${storeLabel} (sessions end with this process; set REDIS_URL to use Redis)`

if (redisUrl) {
  // Fail at start, not on the first request, when Redis is not there.
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 5 seconds")), 5000).unref())
  try {
    await Promise.race([mw.store.client.ping(), timeout])
  } catch (error) {
    console.error(`Cannot reach Redis at ${redisAddress(redisUrl)}: ${error.message}`)
    await mw.close().catch(() => {})
    process.exit(1)
  }
}

const server = createServer(app.callback())
server.on("error", async (error) => {
  console.error(error.code === "EADDRINUSE" ? `Port ${portText} is in use: try --port N (0 picks a free port)` : error.message)
  await mw.close().catch(() => {})
  process.exit(1)
})
server.listen(Number(portText), "127.0.0.1", () => {
  const { port } = server.address()
  // One write, so whoever reads the URL has the store line too.
  console.log(`koa-redis-session-sets demo: http://127.0.0.1:${port}/\nSessions: ${storeText}\nPress Ctrl-C to stop.`)
})

let stopping = false
const stop = async (signal) => {
  if (stopping) return
  stopping = true
  console.log(`\n${signal}: stopping`)
  // Open keep-alive connections would hold close() up: end them.
  await new Promise((resolve) => {
    server.close(resolve)
    server.closeAllConnections()
  })
  await mw.close()
  console.log("Stopped.")
}
process.once("SIGINT", () => void stop("SIGINT"))
process.once("SIGTERM", () => void stop("SIGTERM"))
