#!/usr/bin/env node
// `npm run bench`: HTTP benchmarks of this library against its peers and the
// raw-Redis ceiling, then revoke-all at scale (bench/revoke.mjs) and store-level
// throughput against redis-benchmark (bench/store.mjs).
//
// It starts its own redis-server on a free 127.0.0.1 port (no persistence) and
// stops it, by PID, at the end. Each stack's HTTP server runs in its own child
// process (bench/servers/*.mjs); autocannon drives it from another child
// (bench/lib/load.mjs). All traffic stays on 127.0.0.1.
//
// Usage: npm run bench -- [--duration 3] [--warmup 1] [--rounds 3] [--connections 50]
//          [--only lib,koa-session] [--flows read,write] [--skip-http] [--skip-revoke]
//          [--skip-store] [--revoke-sizes 10000,100000] [--list-sizes 1000,10000,100000] [--scale-million]
//          [--profile] [--out bench/results]
import { fork, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { summariseProfile } from "./lib/profile.mjs"
import { Cluster, Redis } from "ioredis"
import { redisServerVersion, startCluster, startRedis } from "../scripts/redis-server.mjs"
import { chartSvg, FLOWS, httpTable, markdown, median, targetChecks } from "./lib/report.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "..")

const STACKS = [
  { name: "koa-bare", file: "koa-bare.mjs", label: "Koa, no session (floor)", redis: false },
  { name: "ioredis-raw", file: "ioredis-raw.mjs", layout: "v3", label: "raw ioredis in Koa (ceiling)" },
  { name: "ioredis-fixed", file: "ioredis-fixed.mjs", flows: ["read"], label: "raw ioredis in Koa, READ of a fixed key, no cookie (stricter floor)" },
  { name: "ioredis-raw-multi", file: "ioredis-raw.mjs", layout: "v3", env: { RAW_WRITE: "multi" }, flows: ["write"], label: "raw ioredis in Koa, WRITE as MULTI/EXEC" },
  { name: "lib-unsigned", file: "lib.mjs", layout: "v3", env: { BENCH_SIGNED: "0" }, label: "this library, ctx.session, signed: false" },
  { name: "lib-signed", file: "lib.mjs", layout: "v3", env: { BENCH_SIGNED: "1" }, label: "this library, ctx.session, signed (default)" },
  { name: "lib-rolling", file: "lib.mjs", layout: "v3", env: { BENCH_SIGNED: "0", BENCH_CONTROLS: "rolling" }, flows: ["read"], label: "this library, ctx.session, signed: false, rolling: true" },
  { name: "lib-capped", file: "lib.mjs", layout: "v3", env: { BENCH_SIGNED: "0", BENCH_CONTROLS: "capped" }, flows: ["write"], label: "this library, ctx.session, signed: false, maxSessions 5 + track" },
  { name: "lib-effect-unsigned", file: "lib-effect.mjs", layout: "v3", env: { BENCH_SIGNED: "0" }, label: "this library, SessionMiddleware.run, signed: false" },
  { name: "platform-raw", file: "platform-raw.mjs", layout: "v3", label: "raw ioredis in an @effect/platform handler (its ceiling)" },
  { name: "platform-lib", file: "platform-lib.mjs", layout: "v3", label: "this library, koa-redis-session-sets/http, signed: false" },
  { name: "koa-session-unsigned", file: "koa-session.mjs", env: { BENCH_SIGNED: "0" }, label: "koa-session + koa-redis, signed: false" },
  { name: "koa-session-signed", file: "koa-session.mjs", env: { BENCH_SIGNED: "1" }, label: "koa-session + koa-redis, signed (default)" },
  { name: "express-session", file: "express-session.mjs", label: "express-session + connect-redis (signed)" },
  // On a 3-master Redis Cluster the run starts when one of these is selected; `ceiling`: its
  // "× raw" is over that stack's measurement in the same round and flow, not over ioredis-raw.
  { name: "cluster-raw", file: "cluster-raw.mjs", layout: "v3", cluster: true, label: "raw ioredis Cluster in Koa (the cluster ceiling)" },
  { name: "cluster-lib", file: "lib.mjs", layout: "v3", cluster: true, ceiling: "cluster-raw", env: { BENCH_SIGNED: "0", BENCH_CLUSTER: "1" }, label: "this library on a Cluster, ctx.session, signed: false (× cluster-raw)" }
]

// Raw ioredis is measured again after every this many other stacks (see the HTTP loop).
const ANCHOR_EVERY = 3

const HELP = `npm run bench -- [options]
  --duration S          measured seconds per stack, flow and round (default 3)
  --warmup S            warm-up seconds before each measurement (default 1)
  --store-duration S    measured seconds per store-level round (default 3)
  --rounds N            rounds; stacks are interleaved within a round (default 3)
  --connections N       autocannon connections, one session each (default 50)
  --only A,B            stacks whose name is A or starts with "A-" (ioredis-raw is always kept for ratios;
                        --only cluster: cluster-raw and cluster-lib, on a 3-master cluster the run starts)
                        stacks: ${STACKS.map((s) => s.name).join(", ")}
  --flows read,write    flows to run (default both)
  --skip-http | --skip-revoke | --skip-store   leave a part out
  --revoke-sizes N,M    sessions for revoke-all, deleteByReference (default 10000,100000)
  --list-sizes N,M      sessions for the device list, store.listSessions (default 1000,10000,100000; with the revoke part)
  --scale-million       also 1000000 sessions for both (issue 15's largest size; several minutes more)
  --max-foreign F       a measurement during which other processes used more than this share
                        of the machine's CPU is repeated (default 0.1) ...
  --max-slowdown X      ... and so is one during which the server's CPU ran more than X times slower
                        than its fastest in the run, by a fixed probe timed before and after (default 1.35) ...
  --retries N           ... up to N times, keeping the least disturbed attempt (default 2)
  --pin auto|off        auto (default): with 2+ CPUs and taskset, the server under test gets the
                        last CPU to itself; redis-server and the load generator share the rest
  --profile             also profile the library's server (node --cpu-prof) in each of --flows, for the
                        --only stacks among ioredis-raw, lib-unsigned, lib-signed, lib-effect-unsigned
  --profile-only        only the profile
  --out DIR             where results go (default bench/results)`

const { values: args } = parseArgs({
  args: process.argv.slice(2),
  options: {
    duration: { type: "string", default: "3" },
    warmup: { type: "string", default: "1" },
    "store-duration": { type: "string", default: "3" },
    rounds: { type: "string", default: "3" },
    connections: { type: "string", default: "50" },
    only: { type: "string" },
    flows: { type: "string", default: FLOWS.join(",") },
    "skip-http": { type: "boolean", default: false },
    "skip-revoke": { type: "boolean", default: false },
    "skip-store": { type: "boolean", default: false },
    "revoke-sizes": { type: "string", default: "10000,100000" },
    "list-sizes": { type: "string", default: "1000,10000,100000" },
    "scale-million": { type: "boolean", default: false },
    "max-foreign": { type: "string", default: "0.1" },
    "max-slowdown": { type: "string", default: "1.35" },
    retries: { type: "string", default: "2" },
    pin: { type: "string", default: "auto" },
    profile: { type: "boolean", default: false },
    "profile-only": { type: "boolean", default: false },
    out: { type: "string", default: path.join(root, "bench", "results") },
    help: { type: "boolean", short: "h", default: false }
  }
})
if (args.help) {
  console.log(HELP)
  process.exit(0)
}
const positiveInt = (name) => {
  const n = Number(args[name])
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${args[name]}`)
  return n
}
// Sizes in increasing order (the linearity line compares neighbours), 1 000 000 added by --scale-million.
const scaleSizes = (list) => {
  const sizes = new Set(list.split(",").map(Number).filter((n) => n > 0))
  if (args["scale-million"]) sizes.add(1_000_000)
  return [...sizes].sort((a, b) => a - b)
}
const options = {
  duration: positiveInt("duration"),
  warmup: Number(args.warmup) >= 0 ? Number(args.warmup) : 1,
  storeDuration: positiveInt("store-duration"),
  rounds: Math.round(positiveInt("rounds")),
  connections: Math.round(positiveInt("connections")),
  flows: args.flows.split(",").map((f) => f.trim()).filter((f) => FLOWS.includes(f)),
  revokeSizes: scaleSizes(args["revoke-sizes"]),
  listSizes: scaleSizes(args["list-sizes"]),
  maxForeign: Number(args["max-foreign"]),
  maxSlowdown: Math.max(1.01, Number(args["max-slowdown"]) || 1.35),
  retries: Math.max(0, Math.round(Number(args.retries) || 0)),
  argv: process.argv.slice(2)
}
const only = args.only?.split(",").map((s) => s.trim()).filter(Boolean)
const selected = (name) => !only || name === "ioredis-raw" || only.some((o) => name === o || name.startsWith(`${o}-`))
// (A stack's ceiling runs with it.)
const stacks = STACKS.filter((s) => selected(s.name) || STACKS.some((o) => o.ceiling === s.name && selected(o.name)))
const runHttp = !args["skip-http"] && !args["profile-only"]
const runRevoke = !args["skip-revoke"] && !args["profile-only"]
const runStore = !args["skip-store"] && !args["profile-only"]
const runProfile = args.profile || args["profile-only"]
const outDir = path.resolve(args.out)
mkdirSync(outDir, { recursive: true })

// ---------------------------------------------------------------------------
// Build dist/ when it is missing or older than src/.

const newestMtime = (entry) => {
  const stat = statSync(entry)
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(stat.mtimeMs, ...readdirSync(entry).map((name) => newestMtime(path.join(entry, name))))
}
// The servers import a private copy of dist/ taken once per run, so every stack runs the
// same build even if dist/ is rebuilt (or cleaned by tsup) while the benchmark runs. The
// copy sits in a temp directory whose node_modules links to the project's, so `effect`,
// `ioredis` and `csrf` resolve exactly as they do for dist/.
const snapshotDist = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "krss-bench-"))
  cpSync(path.join(root, "dist"), path.join(dir, "dist"), { recursive: true })
  symlinkSync(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir")
  writeFileSync(path.join(dir, "package.json"), JSON.stringify({ type: "module", private: true }))
  const entry = path.join(dir, "dist", "index.js")
  const sha256 = createHash("sha256").update(readFileSync(entry)).digest("hex")
  const remove = () => {
    // Unlink the node_modules link itself first; only then remove the copy.
    rmSync(path.join(dir, "node_modules"), { force: true })
    rmSync(dir, { recursive: true, force: true })
  }
  return { dir, entry, sha256, remove }
}

const ensureBuilt = () => {
  const dist = path.join(root, "dist", "index.js")
  const inputs = [path.join(root, "src"), path.join(root, "tsup.config.ts"), path.join(root, "scripts", "fix-cjs.mjs")]
  const stale = !existsSync(dist) || inputs.some((i) => existsSync(i) && newestMtime(i) > statSync(dist).mtimeMs)
  if (!stale) return
  console.log(existsSync(dist) ? "dist/ is older than src/: npm run build" : "dist/ is missing: npm run build")
  const result = spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" })
  if (result.status !== 0) throw new Error("npm run build failed")
}

// ---------------------------------------------------------------------------
// Child processes: servers, load generator, sub-benchmarks.

const children = new Set()
const track = (child) => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}
// Only processes started here are stopped, by their handle (PID).
const killChildren = () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
}
process.once("exit", killChildren)
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    killChildren()
    void Promise.all([redis?.stop(), cluster?.stop()]).finally(() => process.exit(130))
  })
}

const waitExit = (child, ms = 5_000) =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
    }, ms)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
  })

// CPU pinning: on a small machine three busy processes (redis-server, the server, the load
// generator) otherwise move between cores at the scheduler's whim, which makes rounds differ
// far more than stacks do. The server under test gets the last CPU to itself.
const CPUS = os.availableParallelism()
const PIN = args.pin !== "off" && CPUS >= 2 && spawnSync("taskset", ["--version"], { stdio: "ignore" }).status === 0
const SERVER_CPUS = `${CPUS - 1}`
const OTHER_CPUS = CPUS === 2 ? "0" : `0-${CPUS - 2}`
const pin = (pid, cpus) => {
  if (PIN && pid !== undefined) spawnSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" })
}

const startServer = (stack, redisUrl, { execArgv = [] } = {}) =>
  new Promise((resolve, reject) => {
    const child = track(
      fork(path.join(here, "servers", stack.file), [], {
        cwd: root,
        env: { ...process.env, REDIS_URL: redisUrl, BENCH_PREFIX: "bench", BENCH_DIST: dist.entry, NODE_ENV: "production", ...stack.env },
        execArgv,
        stdio: ["ignore", "ignore", "pipe", "ipc"]
      })
    )
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${stack.name}: server did not start within 30 s\n${stderr}`))
    }, 30_000)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`${stack.name}: server exited with ${code}\n${stderr}`))
    })
    const cpuWaiters = []
    const probeWaiters = []
    child.on("message", (message) => {
      if (message?.type === "cpu") {
        const usage = message.usage
        cpuWaiters.shift()?.(usage.user + usage.system)
        return
      }
      if (message?.type === "probe") {
        probeWaiters.shift()?.(message.millis)
        return
      }
      if (message?.type !== "ready") return
      clearTimeout(timer)
      child.removeAllListeners("exit")
      pin(child.pid, SERVER_CPUS)
      resolve({
        url: `http://127.0.0.1:${message.port}`,
        stderr: () => stderr,
        /** The server's CPU time so far, in µs. */
        cpu: () =>
          new Promise((resolveCpu) => {
            cpuWaiters.push(resolveCpu)
            child.send({ type: "cpu" })
          }),
        /** How long the server's fixed speed probe takes right now, in ms (common.mjs). */
        probe: () =>
          new Promise((resolveProbe) => {
            probeWaiters.push(resolveProbe)
            child.send({ type: "probe" })
          }),
        stop: async () => {
          if (child.connected) child.send({ type: "stop" })
          else child.kill("SIGTERM")
          await waitExit(child, 10_000)
        }
      })
    })
  })

const runChild = (file, argv, message, { timeoutMs = 600_000, execArgv = [] } = {}) =>
  new Promise((resolve, reject) => {
    const child = track(
      fork(file, argv, { cwd: root, env: { ...process.env, BENCH_DIST: dist.entry }, stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv })
    )
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${path.basename(file)} timed out`))
    }, timeoutMs)
    let settled = false
    child.on("message", (reply) => {
      if (reply?.type === "result") {
        settled = true
        clearTimeout(timer)
        resolve(reply.result)
        if (child.connected) child.disconnect()
      } else if (reply?.type === "error") {
        settled = true
        clearTimeout(timer)
        reject(new Error(reply.message))
        if (child.connected) child.disconnect()
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      if (!settled) reject(new Error(`${path.basename(file)} exited with ${code} before answering`))
    })
    if (message !== undefined) child.send(message)
  })

// ---------------------------------------------------------------------------
// CPU accounting over the measured window: the server's, redis-server's, the load
// generator's and this runner's CPU time, and what the rest of the machine used
// ("foreign": other processes competing for the same cores, which makes a round noisy).

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100
const procStat = () => {
  try {
    const [user, nice, system, , , , , steal] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number)
    const micros = 1e6 / CLK_TCK
    // irq/softirq are left out: they are not charged to any process, ours included.
    return { busy: (user + nice + system) * micros, steal: steal * micros }
  } catch {
    return { busy: NaN, steal: NaN }
  }
}
const redisCpu = async (admin) => {
  const info = await admin.info("cpu")
  const field = (name) => Number(info.match(new RegExp(`^${name}:([\\d.]+)`, "m"))?.[1] ?? NaN)
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6
}
// The fastest speed probe seen in this run: the machine at full speed.
let fastestProbe = Infinity
// The probe runs outside the window: before the CPU readings at its start, after them at its end.
const snapshot = async (server, admin, edge) => {
  const probeNow = async () => {
    const millis = await server.probe()
    fastestProbe = Math.min(fastestProbe, millis)
    return millis
  }
  const before = edge === "start" ? await probeNow() : undefined
  const self = process.cpuUsage()
  const readings = {
    t: performance.now(),
    server: await server.cpu(),
    redis: await redisCpu(admin),
    stat: procStat(),
    self: self.user + self.system
  }
  return { ...readings, probe: before ?? (await probeNow()) }
}

const runLoad = (server, admin, loadOptions) =>
  new Promise((resolve, reject) => {
    const child = track(fork(path.join(here, "lib", "load.mjs"), [], { cwd: root, stdio: ["ignore", "inherit", "inherit", "ipc"] }))
    pin(child.pid, OTHER_CPUS)
    let start
    let settled = false
    const fail = (error) => {
      settled = true
      reject(error)
      if (child.connected) child.disconnect()
    }
    child.on("message", async (message) => {
      try {
        if (message?.type === "measuring") {
          start = await snapshot(server, admin, "start")
          child.send({ type: "go" })
        } else if (message?.type === "result") {
          const end = await snapshot(server, admin, "end")
          settled = true
          if (child.connected) child.disconnect()
          const r = message.result
          const elapsed = (end.t - start.t) * 1000
          const serverCpu = end.server - start.server
          const redis = end.redis - start.redis
          const ours = serverCpu + redis + r.loadCpuMicros + (end.self - start.self)
          const capacity = elapsed * os.availableParallelism()
          r.cpu = {
            serverMicrosPerRequest: serverCpu / r.total,
            redisMicrosPerRequest: redis / r.total,
            loadMicrosPerRequest: r.loadCpuMicros / r.total,
            serverShare: serverCpu / elapsed,
            foreignShare: Math.max(0, end.stat.busy - start.stat.busy - ours) / capacity,
            // The server CPU's speed probe before and after the window, in ms.
            probe: { start: start.probe, end: end.probe },
            stealShare: (end.stat.steal - start.stat.steal) / capacity
          }
          resolve(r)
        } else if (message?.type === "error") fail(new Error(message.message))
      } catch (error) {
        fail(error)
      }
    })
    child.once("exit", (code) => {
      if (!settled) reject(new Error(`load generator exited with ${code} before answering`))
    })
    child.send({ type: "run", ...loadOptions })
  })

// ---------------------------------------------------------------------------
// One measurement: fresh Redis data, fresh server, sessions, sanity check, load.

const cookieHeader = (response) =>
  response.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .filter((c) => !c.endsWith("="))
    .join("; ")

const login = async (url, count) => {
  const cookies = []
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${url}/login`)
    if (response.status !== 200) throw new Error(`/login answered ${response.status}: ${await response.text()}`)
    await response.arrayBuffer()
    cookies.push(cookieHeader(response))
  }
  return cookies
}

const readSession = async (url, cookie) => {
  const response = await fetch(`${url}/read`, { headers: { cookie } })
  if (response.status !== 200) throw new Error(`/read answered ${response.status}`)
  return response.json()
}

// Fails loudly rather than benchmark a path that does not do the work (an unread cookie, a failed write).
const sanityCheck = async (stack, url, cookie, admin) => {
  const before = await readSession(url, cookie)
  if (before.user_id === undefined || before.name === undefined) {
    throw new Error(`${stack.name}: /read did not return the session: ${JSON.stringify(before)}`)
  }
  const response = await fetch(`${url}/write`, { headers: { cookie } })
  if (response.status !== 200) throw new Error(`${stack.name}: /write answered ${response.status}`)
  await response.arrayBuffer()
  const after = await readSession(url, cookie)
  if (String(after.user_id) === String(before.user_id)) throw new Error(`${stack.name}: /write did not change user_id`)
  // Stacks on the library's key layout must also have moved the id between reference sets.
  if (stack.layout === "v3") {
    const [inNew, inOld] = await Promise.all([
      admin.sismember(`bench:user_id:{${after.user_id}}`, after.id),
      admin.sismember(`bench:user_id:{${before.user_id}}`, after.id)
    ])
    if (inNew !== 1 || inOld !== 0) throw new Error(`${stack.name}: /write did not move the id between reference sets`)
  }
}

const measure = async (stack, flow, redis, admin) => {
  await admin.flushall()
  const server = await startServer(stack, redis.url)
  try {
    const cookies = await login(server.url, options.connections)
    await sanityCheck(stack, server.url, cookies[0], admin)
    const result = await runLoad(server, admin, {
      url: server.url,
      path: `/${flow}`,
      cookies,
      connections: options.connections,
      duration: options.duration,
      warmup: options.warmup
    })
    if (result.errors || result.timeouts || result.non2xx) {
      console.warn(`  ! ${stack.name} ${flow}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx\n${server.stderr()}`)
    }
    return result
  } finally {
    await server.stop()
  }
}

// The raw ioredis measurements just before and after a stack's (for its round's ratio).
const anchorsOf = new WeakMap()
const ratioRounds = (rounds, steady) => (rounds.some(steady) ? rounds.filter(steady) : rounds)

// How much slower the server's CPU was than its fastest in this run, at the slower end
// of the window (1 = full speed).
const slowdownOf = (result) => Math.max(result.cpu.probe.start, result.cpu.probe.end) / fastestProbe

// Repeats a measurement that other processes or a slowed-down host disturbed; keeps the
// least disturbed attempt.
const measureQuietly = async (stack, flow, redis, admin) => {
  let best
  const disturbance = (result) => Math.max(result.cpu.foreignShare / options.maxForeign, (slowdownOf(result) - 1) / (options.maxSlowdown - 1))
  for (let attempt = 1; attempt <= options.retries + 1; attempt++) {
    const result = await measure(stack, flow, redis, admin)
    result.attempt = attempt
    if (!best || disturbance(result) < disturbance(best)) best = result
    if (!(disturbance(result) > 1)) break
    if (attempt <= options.retries) {
      const why =
        result.cpu.foreignShare > options.maxForeign
          ? `other processes used ${(100 * result.cpu.foreignShare).toFixed(0)} % of the CPU`
          : `the server's CPU ran ${slowdownOf(result).toFixed(2)}× slower than its best`
      console.log(`    (${stack.name} ${flow}: ${why}; measuring again)`)
    }
  }
  best.cpu.slowdown = slowdownOf(best)
  return best
}

// ---------------------------------------------------------------------------

const gitInfo = () => {
  const rev = spawnSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" })
  const dirty = spawnSync("git", ["status", "--porcelain", "--", "src"], { cwd: root, encoding: "utf8" })
  return { commit: rev.stdout?.trim() || "unknown", dirty: (dirty.stdout ?? "").trim().length > 0 }
}

const machineInfo = (redisVersion) => {
  let cpu = os.cpus()[0]?.model ?? "unknown"
  try {
    cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpu
  } catch {}
  return {
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: os.totalmem() / 2 ** 30,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    redis: redisVersion
  }
}

let redis
let dist
// The cluster stacks' 3-master cluster (started only when one is selected), and what the
// runner asks of it: the same calls as of the single server's admin client.
let cluster
const clusterAdmin = (client) => ({
  client,
  flushall: () => Promise.all(client.nodes("master").map((node) => node.flushall())),
  sismember: (key, member) => client.sismember(key, member),
  // redis-server's CPU: the sum over the masters (redisCpu reads these two fields).
  info: async () => {
    const infos = await Promise.all(client.nodes("master").map((node) => node.info("cpu")))
    const sum = (name) => infos.reduce((total, info) => total + Number(info.match(new RegExp(`^${name}:([\\d.]+)`, "m"))?.[1] ?? NaN), 0)
    return `used_cpu_user:${sum("used_cpu_user")}\nused_cpu_sys:${sum("used_cpu_sys")}\n`
  }
})

const main = async () => {
  const t0 = Date.now()
  ensureBuilt()
  dist = snapshotDist()
  process.once("exit", () => dist.remove())
  redis = await startRedis()
  // (Not this runner: children inherit its affinity, and the store-level run must not be confined.)
  pin(redis.pid, OTHER_CPUS)
  const admin = new Redis(redis.url)
  let clusterAdminClient
  if (stacks.some((s) => s.cluster) && runHttp) {
    cluster = await startCluster(3)
    for (const server of cluster.servers) pin(server.pid, OTHER_CPUS)
    // Children inherit it (common.mjs reads it).
    process.env.BENCH_CLUSTER_NODES = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(",")
    const client = new Cluster(cluster.nodes)
    await new Promise((resolve, reject) => {
      client.once("ready", resolve)
      client.once("error", reject)
    })
    clusterAdminClient = clusterAdmin(client)
    console.log(`redis cluster: 3 masters on ${process.env.BENCH_CLUSTER_NODES} (pids ${cluster.servers.map((s) => s.pid).join(", ")})`)
  }
  const adminFor = (stack) => (stack.cluster ? clusterAdminClient : admin)
  const redisVersion = (await admin.info("server")).match(/redis_version:(\S+)/)?.[1] ?? redisServerVersion()
  const machine = machineInfo(redisVersion)
  console.log(`redis-server ${redisVersion} on ${redis.url} (pid ${redis.pid})`)
  console.log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`)
  console.log(PIN ? `pinned: server under test on CPU ${SERVER_CPUS}; redis-server and the load generator on CPU ${OTHER_CPUS}` : "not pinned")
  const all = {
    date: new Date().toISOString(),
    git: { ...gitInfo(), distSha256: dist.sha256 },
    machine,
    options: { ...options, pinned: PIN ? { server: SERVER_CPUS, others: OTHER_CPUS } : false }
  }

  try {
    if (runHttp) {
      console.log(
        `\nHTTP: ${stacks.length} stacks × ${options.flows.join("+")} × ${options.rounds} round(s) (raw ioredis re-measured after every ${ANCHOR_EVERY} stacks), ` +
          `${options.connections} connections, ${options.warmup} s warm-up + ${options.duration} s each`
      )
      // Each round and flow measures raw ioredis first, then after every ANCHOR_EVERY other
      // stacks and last; a stack's ratio for the round is its req/s over the mean of the raw
      // measurements just before and just after it. The machine's speed drifts over minutes
      // (see bench/README.md), so a stack is only ever compared with raw measured next to it.
      const measured = Object.fromEntries(stacks.map((s) => [s.name, Object.fromEntries(options.flows.map((f) => [f, []]))]))
      const rawStack = stacks.find((s) => s.name === "ioredis-raw")
      for (let round = 1; round <= options.rounds; round++) {
        for (const flow of options.flows) {
          const others = stacks.filter((s) => s !== rawStack && (!s.flows || s.flows.includes(flow)))
          const sequence = [rawStack]
          others.forEach((stack, i) => {
            sequence.push(stack)
            if ((i + 1) % ANCHOR_EVERY === 0 || i === others.length - 1) sequence.push(rawStack)
          })
          const done = []
          for (const stack of sequence) {
            const result = await measureQuietly(stack, flow, redis, adminFor(stack))
            result.round = round
            done.push({ stack, result })
            console.log(
              `  round ${round}/${options.rounds}  ${stack.name.padEnd(22)} ${flow.padEnd(5)} ${Math.round(result.rps).toString().padStart(7)} req/s` +
                `  p99 ${String(result.latency.p99).padStart(3)} ms  server ${result.cpu.serverMicrosPerRequest.toFixed(0).padStart(4)} µs CPU/req` +
                `  (other load ${(100 * result.cpu.foreignShare).toFixed(0)} %, CPU ${result.cpu.slowdown.toFixed(2)}× slower than its best)`
            )
          }
          done.forEach(({ stack, result }, i) => {
            const ceiling = stack.ceiling && done.find((d) => d.stack.name === stack.ceiling)?.result
            if (ceiling) {
              result.vsRaw = { rps: result.rps / ceiling.rps, cpu: ceiling.cpu.serverMicrosPerRequest / result.cpu.serverMicrosPerRequest }
              anchorsOf.set(result, [ceiling])
            } else if (stack !== rawStack) {
              const before = done.slice(0, i).reverse().find((d) => d.stack === rawStack).result
              const after = done.slice(i + 1).find((d) => d.stack === rawStack).result
              result.vsRaw = {
                rps: result.rps / ((before.rps + after.rps) / 2),
                cpu: (before.cpu.serverMicrosPerRequest + after.cpu.serverMicrosPerRequest) / 2 / result.cpu.serverMicrosPerRequest
              }
              anchorsOf.set(result, [before, after])
            } else result.vsRaw = { rps: 1, cpu: 1 }
            measured[stack.name][flow].push(result)
          })
        }
      }
      // A round's ratio counts when the stack and both its raw anchors ran at (near) full
      // speed, judged against the fastest probe of the whole run; if no round did, all count.
      const steady = (r) => [r, ...(anchorsOf.get(r) ?? [])].every((m) => slowdownOf(m) <= options.maxSlowdown)
      const results = {}
      for (const stack of stacks) {
        results[stack.name] = {}
        for (const flow of options.flows) {
          const rounds = measured[stack.name][flow]
          if (rounds.length === 0) continue
          results[stack.name][flow] = {
            rps: median(rounds.map((r) => r.rps)),
            p99: median(rounds.map((r) => r.latency.p99)),
            p50: median(rounds.map((r) => r.latency.p50)),
            serverMicros: median(rounds.map((r) => r.cpu.serverMicrosPerRequest)),
            redisMicros: median(rounds.map((r) => r.cpu.redisMicrosPerRequest)),
            foreignMax: Math.max(...rounds.map((r) => r.cpu.foreignShare)),
            // "× raw": the median over (steady) rounds of the ratio to the adjacent raw measurements.
            roundRatios: rounds.map((r) => r.vsRaw.rps),
            steadyRounds: rounds.map(steady),
            ratio: median(ratioRounds(rounds, steady).map((r) => r.vsRaw.rps)),
            cpuRatio: median(ratioRounds(rounds, steady).map((r) => r.vsRaw.cpu)),
            rounds
          }
        }
      }
      all.http = {
        options: { duration: options.duration, warmup: options.warmup, rounds: options.rounds, connections: options.connections },
        flows: options.flows,
        stacks: stacks.map(({ name, label, ceiling }) => ({ name, label, ...(ceiling ? { ceiling } : {}) })),
        // The speed probe at the machine's fastest in this run (ms; lower is faster).
        fastestProbeMillis: fastestProbe,
        results
      }
      console.log("\n" + httpTable(all.http) + "\n")
      for (const check of targetChecks(all.http)) console.log(`  ${check.met ? "met    " : "NOT met"}  ${check.target}: ${check.value}`)
    }

    if (runRevoke) {
      console.log(`\nRevoke-all: deleteByReference on one user holding ${options.revokeSizes.join(", ")} sessions`)
      await admin.flushall()
      // A hang guard that grows with the work: 4 passes per size, at most ~0.5 ms per session each on a slow machine.
      const scaleTimeout = (sizes) => ({ timeoutMs: 600_000 + 4 * 0.5 * sizes.reduce((a, b) => a + b, 0) })
      const revokeArgs = ["--redis-url", redis.url, "--sizes", options.revokeSizes.join(",")]
      all.revoke = await runChild(path.join(here, "revoke.mjs"), revokeArgs, undefined, scaleTimeout(options.revokeSizes))
      console.log(`\nDevice list: store.listSessions iterated over one user holding ${options.listSizes.join(", ")} sessions`)
      await admin.flushall()
      const listArgs = ["--redis-url", redis.url, "--operation", "list", "--sizes", options.listSizes.join(",")]
      all.list = await runChild(path.join(here, "revoke.mjs"), listArgs, undefined, scaleTimeout(options.listSizes))
    }

    if (runStore) {
      console.log("\nStore level: SessionStore get/set vs redis-benchmark HGETALL/EVALSHA")
      await admin.flushall()
      all.store = await runChild(path.join(here, "store.mjs"), [
        "--redis-url",
        redis.url,
        "--duration",
        String(Math.min(options.duration, options.storeDuration)),
        "--rounds",
        String(options.rounds),
        "--concurrency",
        String(options.connections)
      ])
    }

    if (runProfile) {
      console.log(`\nProfile: node --cpu-prof on the server, ${options.flows.join(" + ")} flow(s)`)
      all.profile = []
      // ioredis-raw is profiled too, as the reference the library's costs are read against.
      const profiled = ["ioredis-raw", "lib-unsigned", "lib-signed", "lib-effect-unsigned"].filter((name) => name === "ioredis-raw" || selected(name))
      const seconds = Math.max(options.duration, 5)
      for (const flow of options.flows) {
        for (const name of profiled) {
          const stack = STACKS.find((s) => s.name === name)
          await admin.flushall()
          const profileName = `${name}-${flow}.cpuprofile`
          const server = await startServer(stack, redis.url, {
            execArgv: ["--cpu-prof", `--cpu-prof-dir=${outDir}`, `--cpu-prof-name=${profileName}`]
          })
          let result
          try {
            const cookies = await login(server.url, options.connections)
            await sanityCheck(stack, server.url, cookies[0], admin)
            result = await runLoad(server, admin, {
              url: server.url,
              path: `/${flow}`,
              cookies,
              connections: options.connections,
              duration: seconds,
              warmup: options.warmup
            })
          } finally {
            await server.stop()
          }
          console.log(
            `  ${name} ${flow} under the profiler: ${Math.round(result.rps)} req/s, server ${result.cpu.serverMicrosPerRequest.toFixed(0)} µs CPU/req` +
              ` (other load ${(100 * result.cpu.foreignShare).toFixed(0)} %)`
          )
          all.profile.push({ flow, ...summariseProfile(`${name}, ${flow.toUpperCase()} flow`, path.join(outDir, profileName), root, result.cpu.serverMicrosPerRequest) })
        }
      }
      const md = [
        "## Profile: server process",
        "",
        `\`node --cpu-prof\` on the server while autocannon drives each flow (${options.connections} connections, ${seconds} s after ${options.warmup} s warm-up), startup samples dropped. ` +
          "µs/req spreads the server's CPU time per request (measured under the profiler, so inflated) over the profile's shares.",
        "",
        ...all.profile.map((p) => p.markdown)
      ].join("\n")
      writeFileSync(path.join(outDir, "profile.md"), md)
      for (const p of all.profile) console.log("\n" + p.text)
      console.log(`\nwrote ${path.relative(root, path.join(outDir, "profile.md"))} (profiles: ${outDir}/*.cpuprofile)`)
    }
  } finally {
    await admin.quit().catch(() => admin.disconnect())
    await clusterAdminClient?.client.quit().catch(() => clusterAdminClient.client.disconnect())
    await Promise.all([redis.stop(), cluster?.stop()])
  }

  if (all.http || all.revoke || all.store) {
    // Small enough to commit: numbers to 4 significant digits; of the profiles only the
    // per-package split (profile.md has the rest).
    const profile = all.profile?.map(({ name, summary }) => ({
      name,
      microsPerRequest: summary.microsPerRequest,
      byCategory: summary.byCategory.slice(0, 12),
      landmarks: summary.landmarks
    }))
    const round4 = (_key, value) => (typeof value === "number" && !Number.isInteger(value) ? Number(value.toPrecision(4)) : value)
    const json = JSON.stringify({ ...all, profile }, round4, 1)
    writeFileSync(path.join(outDir, "results.json"), json + "\n")
    writeFileSync(path.join(outDir, "results.md"), markdown(all))
    if (all.http) writeFileSync(path.join(outDir, "chart.svg"), chartSvg(all.http, all.machine))
    console.log(`\nwrote ${["results.json", "results.md", all.http ? "chart.svg" : null].filter(Boolean).map((f) => path.relative(root, path.join(outDir, f))).join(", ")}`)
  }
  console.log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
}

main().catch(async (error) => {
  console.error(error)
  killChildren()
  await Promise.all([redis?.stop(), cluster?.stop()])
  process.exit(1)
})
