#!/usr/bin/env node
// npm run soak [-- --duration 30s] [--clients 32] [--users 20] [--cluster] [--json]
//
// Soaks the built package (dist/, built first when missing or older than src/) under
// many concurrent keep-alive HTTP clients, against its own redis-server (or 3-master
// Redis Cluster with --cluster) on a free loopback port, then checks the invariants of
// every session and reference set (see test/soak/core.mjs).
// Exit code: 0 when all is well, 1 on any invariant violation, 2 on request errors only.
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { runInNewContext } from "node:vm"
import { setFlagsFromString } from "node:v8"
import { parseArgs } from "node:util"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Cluster, Redis } from "ioredis"
import { formatReport, runSoak } from "../test/soak/core.mjs"
import { startCluster, startRedis } from "./redis-server.mjs"

const root = fileURLToPath(new URL("..", import.meta.url))

const USAGE = `usage: npm run soak -- [options]
  --duration <t>     how long the clients run: seconds, or 500ms / 30s / 2m (default 30s)
  --clients <n>      concurrent keep-alive HTTP clients (default 32)
  --users <n>        shared pool of user ids (default 20)
  --cluster          run against a 3-master Redis Cluster started for the run
  --redis-url <url>  use this redis-server instead of starting one (a fresh prefix is used and removed)
  --json             print the report as JSON (progress goes to stderr)
  --help`

const parseDuration = (text) => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim())
  if (!match) throw new Error(`--duration: expected e.g. 30, 30s, 500ms or 2m, got ${JSON.stringify(text)}`)
  const amount = Number(match[1])
  return Math.round(amount * { ms: 1, s: 1000, m: 60_000 }[match[2] ?? "s"])
}

const positiveInt = (name, text) => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${JSON.stringify(text)}`)
  return n
}

/** A garbage collector: --expose-gc's, or enabled now through V8 flags (works on Node 20). */
const findGc = () => {
  if (typeof globalThis.gc === "function") return globalThis.gc
  try {
    setFlagsFromString("--expose-gc")
    const gc = runInNewContext("gc")
    return typeof gc === "function" ? gc : undefined
  } catch {
    return undefined
  }
}

const newestMtime = (dir) =>
  Math.max(0, ...readdirSync(dir, { recursive: true }).map((f) => statSync(join(dir, String(f))).mtimeMs))

/** Builds dist/ when it is missing or older than any file in src/. */
const ensureBuilt = (log) => {
  const built = join(root, "dist", "index.js")
  if (existsSync(built) && statSync(built).mtimeMs >= newestMtime(join(root, "src"))) return
  log("building dist/ (npm run build)")
  execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", ["run", "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
}

const waitReady = (cluster) =>
  new Promise((resolve, reject) => {
    cluster.once("ready", resolve)
    cluster.once("error", reject)
  })

const main = async () => {
  const { values } = parseArgs({
    options: {
      duration: { type: "string", default: "30s" },
      clients: { type: "string", default: "32" },
      users: { type: "string", default: "20" },
      cluster: { type: "boolean", default: false },
      "redis-url": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false }
    },
    strict: true
  })
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const durationMs = parseDuration(values.duration)
  const clients = positiveInt("clients", values.clients)
  const users = positiveInt("users", values.users)
  // Progress to stderr with --json, so stdout is the JSON alone.
  const log = (line) => (values.json ? console.error(line) : console.log(line))

  ensureBuilt(log)
  const { default: factory } = await import(pathToFileURL(join(root, "dist", "index.js")).href)

  let stopRedis = async () => {}
  let client
  try {
    if (values.cluster) {
      if (values["redis-url"]) throw new Error("--cluster starts its own cluster; --redis-url does not apply")
      log("starting a 3-master Redis Cluster on loopback")
      const cluster = await startCluster(3)
      stopRedis = cluster.stop
      log(`  nodes ${cluster.nodes.map((n) => n.port).join(", ")} (pids ${cluster.servers.map((s) => s.pid).join(", ")})`)
      client = new Cluster(cluster.nodes)
      await waitReady(client)
    } else {
      let url = values["redis-url"]
      if (url === undefined) {
        const redis = await startRedis()
        stopRedis = redis.stop
        url = redis.url
        log(`started redis-server at ${url} (pid ${redis.pid})`)
      }
      client = new Redis(url)
    }
    client.on("error", () => {}) // requests see RedisError; the report counts them
    log(`soaking for ${durationMs / 1000} s with ${clients} clients`)
    const report = await runSoak({ client, factory, durationMs, clients, users, gc: findGc(), log })
    if (values.json) console.log(JSON.stringify(report, null, 2))
    else console.log(formatReport(report))
    if (report.check.violationCount > 0) return 1
    if (report.errors.count > 0) return 2
    return 0
  } finally {
    await client?.quit().catch(() => client.disconnect())
    await stopRedis()
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error) => {
    console.error(error instanceof Error ? error.message : error)
    if (String(error?.code).startsWith("ERR_PARSE_ARGS")) console.error(USAGE)
    process.exitCode = 1
  }
)
