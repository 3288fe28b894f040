#!/usr/bin/env node
// In-process A/B of the platform pair (bench/servers/platform-apps.mjs): the ceiling's and
// the ./http middleware's web handlers called with plain `Request`s, no HTTP server and no
// load generator, so a noisy machine moves both alike. Batches alternate (raw, lib, lib,
// raw, ...); each batch runs `--concurrency` request loops, one session each, for
// `--requests` requests, and records this process's CPU time (process.cpuUsage) per
// request. Reported: the median CPU µs/request of each, and the median over adjacent
// batch pairs of raw CPU / lib CPU, which is the throughput ratio of a CPU-bound server.
// It leaves out what both stacks share outside the handler (node:http, toNodeListener),
// so its ratios are lower (stricter) than the HTTP benchmark's.
//   node bench/platform-ab.mjs [--redis-url URL] [--batches 20] [--requests 4000] [--concurrency 50] [--flows read,write] [--lib-read raw]
import { parseArgs } from "node:util"
import { Redis } from "ioredis"
import { startRedis } from "../scripts/redis-server.mjs"
import { cpuPerCall } from "./lib/batch.mjs"
import { importHttp } from "./lib/library.mjs"
import { median } from "./lib/report.mjs"
import { libHandler, rawHandler } from "./servers/platform-apps.mjs"

const { values: args } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    batches: { type: "string", default: "20" },
    requests: { type: "string", default: "4000" },
    concurrency: { type: "string", default: "50" },
    flows: { type: "string", default: "read,write" },
    // "raw": lib's /read does the ceiling's HGETALL inside the middleware (the middleware's own cost).
    "lib-read": { type: "string", default: "session" },
    // One stack's batches only, for a CPU profile of it (node --cpu-prof bench/platform-ab.mjs --only lib).
    only: { type: "string" }
  }
})
const BATCHES = Math.max(2, Math.round(Number(args.batches)))
const REQUESTS = Math.max(100, Math.round(Number(args.requests)))
const C = Math.max(1, Math.round(Number(args.concurrency)))
if (args["lib-read"] !== "session" && args["lib-read"] !== "raw") throw new Error(`--lib-read is session or raw, not ${args["lib-read"]}`)
const FLOWS = args.flows.split(",").filter((f) => f === "read" || f === "write")

const redis = args["redis-url"] ? undefined : await startRedis()
const url = args["redis-url"] ?? redis.url
const { SessionHttp } = await importHttp()
const rawClient = new Redis(url)
const libClient = new Redis(url)
const stacks = {
  raw: await rawHandler(rawClient),
  lib: libHandler(SessionHttp, libClient, { read: args["lib-read"] })
}

const base = "http://127.0.0.1"
const login = async (handler) => {
  const response = await handler(new Request(`${base}/login`))
  const cookie = response.headers
    .getSetCookie()
    .map((line) => line.split(";")[0])
    .join("; ")
  if (response.status !== 200 || !cookie) throw new Error(`/login answered ${response.status} without a cookie`)
  return cookie
}
const cookies = {}
for (const [name, { handler }] of Object.entries(stacks)) {
  cookies[name] = []
  for (let i = 0; i < C; i++) cookies[name].push(await login(handler))
}

// One batch: C loops of sequential requests, REQUESTS in all; CPU µs per request.
const batch = async (name, flow) => {
  const { handler } = stacks[name]
  return cpuPerCall(cookies[name], Math.ceil(REQUESTS / C), async (cookie) => {
    const response = await handler(new Request(`${base}/${flow}`, { headers: { cookie } }))
    await response.arrayBuffer()
    if (response.status !== 200) throw new Error(`${name} /${flow} answered ${response.status}`)
  })
}

const results = {}
try {
  for (const flow of FLOWS) {
    // Warm-up: JIT both, then measure.
    await batch("raw", flow)
    await batch("lib", flow)
    const ratios = []
    const cpu = { raw: [], lib: [] }
    for (let b = 0; b < BATCHES; b++) {
      const order = args.only ? [args.only] : b % 2 === 0 ? ["raw", "lib"] : ["lib", "raw"]
      const pair = {}
      for (const name of order) {
        pair[name] = await batch(name, flow)
        cpu[name].push(pair[name])
      }
      if (!args.only) ratios.push(pair.raw / pair.lib)
    }
    if (args.only) {
      console.log(`${flow.padEnd(5)}  ${args.only} ${median(cpu[args.only]).toFixed(1)} µs CPU/req`)
      continue
    }
    results[flow] = {
      raw: median(cpu.raw),
      lib: median(cpu.lib),
      ratio: median(ratios),
      min: Math.min(...ratios),
      max: Math.max(...ratios)
    }
    const r = results[flow]
    console.log(
      `${flow.padEnd(5)}  raw ${r.raw.toFixed(1)} µs CPU/req  lib ${r.lib.toFixed(1)} µs CPU/req  raw/lib ${r.ratio.toFixed(3)}× (batch pairs ${r.min.toFixed(2)}–${r.max.toFixed(2)}, ${BATCHES} pairs of ${REQUESTS} requests, ${C} in flight)`
    )
  }
} finally {
  await stacks.lib.dispose()
  await rawClient.quit()
  await libClient.quit()
  await redis?.stop()
}
