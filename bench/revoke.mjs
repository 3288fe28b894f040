#!/usr/bin/env node
// Revoke-all at scale: `SessionMiddleware.store.deleteByReference("user_id", X)` on
// one user holding N sessions; with `--operation list`, the device list instead:
// `SessionMiddleware.store.listSessions("user_id", X)` iterated to the end (its pages
// are dropped as they are read, so memory should stay flat as N grows).
// Called by bench/run.mjs; also runs on its own:
//   node bench/revoke.mjs [--redis-url redis://127.0.0.1:PORT] [--sizes 10000,100000,1000000] [--operation revoke|list] [--repeat 3]
// Without --redis-url it starts (and stops) its own redis-server.
//
// The sessions are written in the v3 key layout (hash `${prefix}:{${id}}` with fields
// id, user_id; SADD `${prefix}:user_id:{${X}}` id; PEXPIRE both) by one small script per
// 5 000 sessions. Each operation runs in a fresh child process, so its time and its peak
// RSS / heap are that process's alone: baseline after connecting and a warm-up run on a
// 100-session user, peak sampled every 2 ms during the call. --repeat (3) timing passes
// per size (median time, largest peaks), then one pass measuring the live heap.
import { fork } from "node:child_process"
import { randomBytes } from "node:crypto"
import path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { Redis } from "ioredis"
import { startRedis } from "../scripts/redis-server.mjs"
import { importLibrary } from "./lib/library.mjs"
import { scaleSummary } from "./lib/report.mjs"

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
    operation: { type: "string", default: "revoke" },
    help: { type: "boolean", short: "h", default: false }
  }
})
if (args.help) {
  console.log(`node bench/revoke.mjs [options]
  --operation revoke|list   store.deleteByReference (default) or store.listSessions iterated to the end
  --sizes N,M               sessions of the one user, smallest first (default 10000,100000; issue 15's
                            largest is 1000000: npm run bench -- --scale-million runs it for both)
  --repeat N                timing passes per size (default 3), then one live-heap pass
  --redis-url URL           a redis-server to use (default: start one, no persistence)`)
  process.exit(0)
}
const LISTING = args.operation === "list"

// One EVAL writes a chunk of sessions: an ioredis pipeline builds a Command object per
// command, and at 3 million commands (1 000 000 sessions) that client CPU was most of the
// run. Key names are built in Lua: the bench's own standalone server, never a cluster.
const POPULATE = `
local key
for i = 4, #ARGV do
  key = ARGV[1] .. ':{' .. ARGV[i] .. '}'
  redis.call('HSET', key, 'id', ARGV[i], 'user_id', ARGV[2])
  redis.call('PEXPIRE', key, ARGV[3])
  redis.call('SADD', KEYS[1], ARGV[i])
end
return #ARGV - 3`

/** Writes `count` sessions of `userId` in the v3 layout, in chunks (one EVAL each, a few ms of Redis). */
const populate = async (client, userId, count) => {
  const setKey = `${PREFIX}:user_id:{${userId}}`
  const CHUNK = 5_000
  for (let done = 0; done < count; done += CHUNK) {
    const n = Math.min(CHUNK, count - done)
    // 18 random bytes per id, as the library's own ids: 24 base64url characters each.
    const text = randomBytes(18 * n).toString("base64url")
    const ids = new Array(n)
    for (let i = 0; i < n; i++) ids[i] = text.slice(24 * i, 24 * (i + 1))
    await client.eval(POPULATE, 1, setKey, PREFIX, String(userId), TTL, ...ids)
  }
  await client.pexpire(setKey, TTL)
}

// ---------------------------------------------------------------------------
// Child: the process whose time and memory are measured.

const redisCpuSeconds = (info) => Number(info.match(/used_cpu_user:([\d.]+)/)[1]) + Number(info.match(/used_cpu_sys:([\d.]+)/)[1])

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
  let gcMs = 0
  const sample = () => {
    // In the "live heap" pass a full GC runs before each sample, so heapUsed is what is
    // actually retained, not garbage waiting for the next collection.
    if (forcedGc) {
      const g0 = performance.now()
      globalThis.gc()
      gcMs += performance.now() - g0
    }
    const m = process.memoryUsage()
    if (m.rss > rssPeak) rssPeak = m.rss
    if (m.heapUsed > heapPeak) heapPeak = m.heapUsed
  }
  // The next sample after 2 ms (20 ms with a GC, or 4× the last GC's time if longer: a
  // full GC of a large heap would otherwise slow a long run several times over).
  let sampler
  const schedule = () => {
    const g = gcMs
    sample()
    sampler = setTimeout(schedule, forcedGc ? Math.max(20, 4 * (gcMs - g)) : 2)
  }
  sampler = setTimeout(schedule, forcedGc ? 20 : 2)
  const redisCpu0 = redisCpuSeconds(await client.info("cpu"))
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const deleted = await operate(USER)
  const elapsed = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const redisCpu = redisCpuSeconds(await client.info("cpu")) - redisCpu0
  clearTimeout(sampler)
  sample()
  await SessionMiddleware.close()
  await client.quit()
  return {
    deleted,
    warmed,
    ms: elapsed,
    // CPU time of this process (GCs forced by the sampler included) and of redis-server
    // (the INFO before and after included), which a machine busy with other work moves less than wall time.
    cpuMs: (cpu.user + cpu.system) / 1000,
    redisCpuMs: redisCpu * 1000,
    gcMs,
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
      // Timing passes (median time; largest peaks). A revoke deletes what it measured, so
      // each of its passes starts from freshly written sessions; a listing changes nothing
      // (no deadline, every member holds the value), so its passes share one population.
      const passes = []
      let populateMs = 0
      let keysBefore = 0
      let keysLeft = 0
      const fresh = async () => {
        await client.flushall()
        const p0 = performance.now()
        await populate(client, USER, sessions)
        await populate(client, WARMUP_USER, WARMUP_SESSIONS)
        populateMs = performance.now() - p0
        keysBefore = await client.dbsize()
      }
      for (let pass = 0; pass < REPEAT; pass++) {
        if (pass === 0 || !LISTING) await fresh()
        passes.push(await runMeasured(redisUrl))
        keysLeft = Math.max(keysLeft, await client.dbsize())
      }
      const byTime = [...passes].sort((a, b) => a.ms - b.ms)
      const r = byTime[Math.floor(byTime.length / 2)]
      const rssPeakDelta = Math.max(...passes.map((p) => p.rssPeak - p.rssBaseline))
      const heapPeakDelta = Math.max(...passes.map((p) => p.heapPeak - p.heapBaseline))
      // Last pass: the live (retained) heap, with a full GC before each sample.
      if (!LISTING) await fresh()
      const live = await runMeasured(redisUrl, true)
      const row = {
        sessions,
        populateMs,
        keysBefore,
        keysLeft,
        deleted: r.deleted,
        ms: r.ms,
        passesMs: passes.map((p) => p.ms),
        // The median pass's (by wall time).
        cpuMs: r.cpuMs,
        redisCpuMs: r.redisCpuMs,
        rssBaseline: r.rssBaseline,
        rssPeak: r.rssBaseline + rssPeakDelta,
        heapBaseline: r.heapBaseline,
        heapPeak: r.heapBaseline + heapPeakDelta,
        maxRssKiB: Math.max(...passes.map((p) => p.maxRssKiB)),
        liveHeapBaseline: live.heapBaseline,
        liveHeapPeak: live.heapPeak,
        liveMs: live.ms,
        liveGcMs: live.gcMs
      }
      results.push(row)
      console.log(
        `  ${String(sessions).padStart(7)} sessions: ${LISTING ? "listed" : "deleted"} ${r.deleted} in ${r.ms.toFixed(0)} ms ` +
          `(median of ${passes.map((p) => p.ms.toFixed(0)).join(", ")}; ${((r.ms * 1000) / sessions).toFixed(1)} µs/session; ` +
          `CPU ${((r.cpuMs * 1000) / sessions).toFixed(1)} + Redis ${((r.redisCpuMs * 1000) / sessions).toFixed(1)} µs/session); ` +
          `peak RSS +${mib(rssPeakDelta)} over ${mib(r.rssBaseline)}, heap used +${mib(heapPeakDelta)}, ` +
          `live heap +${mib(live.heapPeak - live.heapBaseline)}; keys ${keysBefore} → ${keysLeft}; ` +
          `populated in ${(populateMs / 1000).toFixed(1)} s, live pass ${(live.ms / 1000).toFixed(1)} s (${(live.gcMs / 1000).toFixed(1)} s in forced GCs)`
      )
      if (LISTING && (passes.some((p) => p.deleted !== sessions) || keysLeft !== keysBefore)) {
        console.warn(`  ! expected ${sessions} listed and every key kept`)
      }
      if (!LISTING && (passes.some((p) => p.deleted !== sessions) || keysLeft !== 0)) {
        console.warn(`  ! expected ${sessions} deleted and no keys left`)
      }
    }
    const scale = scaleSummary(results)
    if (scale) console.log(`  ${scale.text.replaceAll("**", "")}`)
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
