#!/usr/bin/env node
// Revoke-all at scale: `SessionMiddleware.store.deleteByReference("user_id", X)` on
// one user holding N sessions; with `--operation list`, the device list instead:
// `SessionMiddleware.store.listSessions("user_id", X)` iterated to the end (its pages
// are dropped as they are read, so memory should stay flat as N grows).
// Called by bench/run.mjs; also runs on its own:
//   node bench/revoke.mjs [--redis-url redis://127.0.0.1:PORT] [--sizes 10000,100000] [--operation revoke|list]
// Without --redis-url it starts (and stops) its own redis-server.
//
// The sessions are written by a raw ioredis pipeline in the v3 key layout (hash
// `${prefix}:{${id}}` with fields id, user_id; SADD `${prefix}:user_id:{${X}}` id;
// PEXPIRE both). Each revoke runs in a fresh child process, so its time and its peak
// RSS / heap are that process's alone: baseline after connecting and a warm-up revoke
// of a 100-session user, peak sampled every 2 ms during the call. --repeat (3) timing
// passes per size (median time, largest peaks), then one pass measuring the live heap.
import { fork } from "node:child_process"
import { randomBytes } from "node:crypto"
import path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { Redis } from "ioredis"
import { startRedis } from "../scripts/redis-server.mjs"
import { importLibrary } from "./lib/library.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const PREFIX = "bench"
const TTL = 28 * 24 * 60 * 60 * 1000
const USER = 424242
const WARMUP_USER = 1
const WARMUP_SESSIONS = 100

const { values: args } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    sizes: { type: "string", default: "10000,100000" },
    repeat: { type: "string", default: "3" },
    child: { type: "boolean", default: false },
    "forced-gc": { type: "boolean", default: false },
    operation: { type: "string", default: "revoke" }
  }
})
const LISTING = args.operation === "list"

/** Writes `count` sessions of `userId` with a raw pipeline, in the v3 layout. */
const populate = async (client, userId, count) => {
  const setKey = `${PREFIX}:user_id:{${userId}}`
  const CHUNK = 5_000
  for (let done = 0; done < count; done += CHUNK) {
    const pipeline = client.pipeline()
    for (let i = done; i < Math.min(count, done + CHUNK); i++) {
      const id = randomBytes(18).toString("base64url")
      const key = `${PREFIX}:{${id}}`
      pipeline.hset(key, "id", id, "user_id", String(userId))
      pipeline.pexpire(key, TTL)
      pipeline.sadd(setKey, id)
    }
    await pipeline.exec()
  }
  await client.pexpire(setKey, TTL)
}

// ---------------------------------------------------------------------------
// Child: the process whose time and memory are measured.

const child = async (redisUrl, forcedGc) => {
  const { default: KoaRedisSessionSets } = await importLibrary()
  const client = new Redis(redisUrl)
  client.on("error", () => {})
  const SessionMiddleware = KoaRedisSessionSets({}, { client, prefix: PREFIX, references: { user_id: {} }, signed: false })
  const { store } = SessionMiddleware
  // Listing: counts what it sees and keeps nothing, as a job streaming the list would.
  const operate = async (user) => {
    if (!LISTING) return store.deleteByReference("user_id", user)
    let seen = 0
    for await (const info of store.listSessions("user_id", user)) if (info.id) seen++
    return seen
  }
  const warmed = await operate(WARMUP_USER)
  globalThis.gc?.()
  await new Promise((r) => setTimeout(r, 50))
  const base = process.memoryUsage()
  let rssPeak = base.rss
  let heapPeak = base.heapUsed
  const sample = () => {
    // In the "live heap" pass a full GC runs before each sample, so heapUsed is what is
    // actually retained, not garbage waiting for the next collection.
    if (forcedGc) globalThis.gc()
    const m = process.memoryUsage()
    if (m.rss > rssPeak) rssPeak = m.rss
    if (m.heapUsed > heapPeak) heapPeak = m.heapUsed
  }
  const sampler = setInterval(sample, forcedGc ? 20 : 2)
  const t0 = performance.now()
  const deleted = await operate(USER)
  const elapsed = performance.now() - t0
  clearInterval(sampler)
  sample()
  await SessionMiddleware.close()
  await client.quit()
  return {
    deleted,
    warmed,
    ms: elapsed,
    rssBaseline: base.rss,
    rssPeak,
    heapBaseline: base.heapUsed,
    heapPeak,
    maxRssKiB: process.resourceUsage().maxRSS
  }
}

const runMeasured = (redisUrl, forcedGc = false) =>
  new Promise((resolve, reject) => {
    const childArgs = ["--child", "--redis-url", redisUrl, "--operation", args.operation, ...(forcedGc ? ["--forced-gc"] : [])]
    const worker = fork(fileURLToPath(import.meta.url), childArgs, {
      execArgv: ["--expose-gc"],
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    let settled = false
    worker.on("message", (m) => {
      settled = true
      if (m.type === "result") resolve(m.result)
      else reject(new Error(m.message))
    })
    worker.once("exit", (code) => {
      if (!settled) reject(new Error(`revoke child exited with ${code}`))
    })
  })

const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`

async function main() {
  const sizes = args.sizes.split(",").map(Number).filter((n) => n > 0)
  const REPEAT = Math.max(1, Math.round(Number(args.repeat) || 1))
  const own = args["redis-url"] ? undefined : await startRedis()
  const redisUrl = args["redis-url"] ?? own.url
  const client = new Redis(redisUrl)
  const results = []
  try {
    for (const sessions of sizes) {
      // Timing passes (median time; largest peaks), each on freshly written sessions.
      const passes = []
      let populateMs = 0
      let keysBefore = 0
      let keysLeft = 0
      for (let pass = 0; pass < REPEAT; pass++) {
        await client.flushall()
        const p0 = performance.now()
        await populate(client, USER, sessions)
        await populate(client, WARMUP_USER, WARMUP_SESSIONS)
        populateMs = performance.now() - p0
        keysBefore = await client.dbsize()
        passes.push(await runMeasured(redisUrl))
        keysLeft = Math.max(keysLeft, await client.dbsize())
      }
      const byTime = [...passes].sort((a, b) => a.ms - b.ms)
      const r = byTime[Math.floor(byTime.length / 2)]
      const rssPeakDelta = Math.max(...passes.map((p) => p.rssPeak - p.rssBaseline))
      const heapPeakDelta = Math.max(...passes.map((p) => p.heapPeak - p.heapBaseline))
      // Last pass on fresh data: the live (retained) heap, with a full GC before each sample.
      await client.flushall()
      await populate(client, USER, sessions)
      await populate(client, WARMUP_USER, WARMUP_SESSIONS)
      const live = await runMeasured(redisUrl, true)
      const row = {
        sessions,
        populateMs,
        keysBefore,
        keysLeft,
        deleted: r.deleted,
        ms: r.ms,
        passesMs: passes.map((p) => p.ms),
        rssBaseline: r.rssBaseline,
        rssPeak: r.rssBaseline + rssPeakDelta,
        heapBaseline: r.heapBaseline,
        heapPeak: r.heapBaseline + heapPeakDelta,
        maxRssKiB: Math.max(...passes.map((p) => p.maxRssKiB)),
        liveHeapBaseline: live.heapBaseline,
        liveHeapPeak: live.heapPeak,
        liveMs: live.ms
      }
      results.push(row)
      console.log(
        `  ${String(sessions).padStart(7)} sessions: ${LISTING ? "listed" : "deleted"} ${r.deleted} in ${r.ms.toFixed(0)} ms ` +
          `(median of ${passes.map((p) => p.ms.toFixed(0)).join(", ")}; ${((r.ms * 1000) / sessions).toFixed(1)} µs/session); ` +
          `peak RSS +${mib(rssPeakDelta)} over ${mib(r.rssBaseline)}, heap used +${mib(heapPeakDelta)}, ` +
          `live heap +${mib(live.heapPeak - live.heapBaseline)}; keys ${keysBefore} → ${keysLeft}`
      )
      if (LISTING && passes.some((p) => p.deleted !== sessions)) console.warn(`  ! expected ${sessions} listed`)
      if (!LISTING && (passes.some((p) => p.deleted !== sessions) || keysLeft !== 0)) {
        console.warn(`  ! expected ${sessions} deleted and no keys left`)
      }
    }
  } finally {
    await client.quit()
    await own?.stop()
  }
  const result = { user: USER, prefix: PREFIX, operation: args.operation, results }
  if (process.send) {
    process.send({ type: "result", result })
    process.disconnect()
  }
}

if (args.child) {
  child(args["redis-url"], args["forced-gc"]).then(
    (result) => {
      process.send({ type: "result", result })
      process.disconnect()
    },
    (error) => {
      process.send({ type: "error", message: String(error?.stack ?? error) })
      process.disconnect()
    }
  )
} else {
  main().catch((error) => {
    if (process.send) process.send({ type: "error", message: String(error?.stack ?? error) })
    else console.error(error)
    process.exitCode = 1
  })
}
