#!/usr/bin/env node
// Store level: ops/s of `SessionStore.get` / `SessionStore.set` (Effect, from dist/,
// N operations in flight) against redis-benchmark on the same server, with the same
// concurrency and no pipelining (-c N -P 1):
//   get  vs  HGETALL of a session hash with the same 6 fields
//   set  vs  EVALSHA of a small script (HSET + PEXPIRE), loaded first
//   set  vs  EVALSHA of the library's own setSession script with the very arguments
//            the store sends (captured from the client), user_id = __rand_int__
// Plain ioredis (Promises, same concurrency, same commands) is measured too, to
// split the cost between ioredis/Node and the library.
//   node bench/store.mjs [--redis-url URL] [--duration 5] [--rounds 3] [--concurrency 50]
import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import { startRedis } from "../scripts/redis-server.mjs"
import { median } from "./lib/report.mjs"
import { importLibrary } from "./lib/library.mjs"

const { RedisClient, SessionStore } = await importLibrary()

const { values: args } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    duration: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "50" },
    warmup: { type: "string", default: "1" }
  }
})
const DURATION = Number(args.duration)
const ROUNDS = Math.max(1, Math.round(Number(args.rounds)))
const C = Math.max(1, Math.round(Number(args.concurrency)))
const WARMUP = Number(args.warmup)
const PREFIX = "bench"
const TTL = 28 * 24 * 60 * 60 * 1000
const PROFILE = { name: "Ada Lovelace", email: "ada@example.com", role: "admin", locale: "en-GB" }
const int = (n) => Math.round(n).toLocaleString("en-US")

/** `C` loops of `op(i)` until the deadline, as Effects; ops/s. */
const effectRate = (runtime, seconds, op) =>
  runtime.runPromise(
    Effect.gen(function* () {
      const deadline = Date.now() + seconds * 1000
      const t0 = performance.now()
      const worker = (i) =>
        Effect.gen(function* () {
          let n = 0
          while (Date.now() < deadline) {
            yield* op(i)
            n++
          }
          return n
        })
      const counts = yield* Effect.all(
        Array.from({ length: C }, (_, i) => worker(i)),
        { concurrency: "unbounded" }
      )
      return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000)
    })
  )

/** The same with plain Promises. */
const promiseRate = async (seconds, op) => {
  const deadline = Date.now() + seconds * 1000
  const t0 = performance.now()
  const worker = async (i) => {
    let n = 0
    while (Date.now() < deadline) {
      await op(i)
      n++
    }
    return n
  }
  const counts = await Promise.all(Array.from({ length: C }, (_, i) => worker(i)))
  return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000)
}

const measureRounds = async (rate) => {
  if (WARMUP > 0) await rate(WARMUP)
  const rounds = []
  for (let r = 0; r < ROUNDS; r++) rounds.push(await rate(DURATION))
  return { ops: median(rounds), rounds }
}

const redisBenchmark = (port, command, extra = []) => {
  const run = (n) => {
    const out = spawnSync(
      "redis-benchmark",
      ["-h", "127.0.0.1", "-p", String(port), "-c", String(C), "-P", "1", "-n", String(n), "--csv", ...extra, ...command],
      { encoding: "utf8" }
    )
    if (out.status !== 0) throw new Error(`redis-benchmark failed: ${out.stderr}`)
    const line = out.stdout.trim().split("\n").find((l) => !l.startsWith('"test"'))
    const rps = Number(line?.split('","')[1])
    if (!(rps > 0)) throw new Error(`redis-benchmark: unexpected output ${out.stdout}`)
    return rps
  }
  // Calibrate n so a run lasts about DURATION seconds.
  const estimate = run(20_000)
  const n = Math.max(20_000, Math.round(estimate * DURATION))
  const rounds = []
  for (let r = 0; r < ROUNDS; r++) rounds.push(run(n))
  return { rps: median(rounds), rounds, n }
}

// `SessionStore.layerMemory` against a plain Map doing the same work in the same Effect
// loop: a copy of the fields out for get; for set, the fields in, the expiry, and the id
// moved between the value sets of the reference index.
const measureMemory = async (ids) => {
  const runtime = ManagedRuntime.make(SessionStore.layerMemory({ prefix: PREFIX, references: ["user_id"] }))
  try {
    const store = await runtime.runPromise(SessionStore)
    const sessions = new Map()
    const index = new Map()
    const plainSet = (id, values) => {
      const session = sessions.get(id) ?? { fields: new Map([["id", id]]), expiresAt: 0 }
      for (const [field, value] of Object.entries(values)) {
        const encoded = String(value)
        if (field === "user_id") {
          const old = session.fields.get(field)
          if (old !== undefined && old !== encoded) index.get(old)?.delete(id)
          let set = index.get(encoded)
          if (set === undefined) index.set(encoded, (set = new Set()))
          set.add(id)
        }
        session.fields.set(field, encoded)
      }
      session.expiresAt = Date.now() + TTL
      sessions.set(id, session)
    }
    const plainGet = (id) => {
      const session = sessions.get(id)
      const out = {}
      if (session !== undefined && session.expiresAt > Date.now()) for (const [field, value] of session.fields) out[field] = value
      return out
    }
    for (const [i, id] of ids.entries()) {
      await runtime.runPromise(store.set(id, { user_id: 1000 + i, ...PROFILE }))
      plainSet(id, { user_id: 1000 + i, ...PROFILE })
    }
    let counter = 3_000_000
    const get = await measureRounds((s) => effectRate(runtime, s, (i) => store.get(ids[i])))
    const set = await measureRounds((s) => effectRate(runtime, s, (i) => store.set(ids[i], { user_id: ++counter })))
    const mapGet = await measureRounds((s) => effectRate(runtime, s, (i) => Effect.sync(() => plainGet(ids[i]))))
    const mapSet = await measureRounds((s) => effectRate(runtime, s, (i) => Effect.sync(() => plainSet(ids[i], { user_id: ++counter }))))
    const rows = [
      { operation: "get", ops: get.ops, rounds: get.rounds, baseline: mapGet.ops, ratio: get.ops / mapGet.ops },
      { operation: "set", ops: set.ops, rounds: set.rounds, baseline: mapSet.ops, ratio: set.ops / mapSet.ops }
    ]
    for (const r of rows) console.log(`  layerMemory ${r.operation} ${int(r.ops)} ops/s (plain Map ${int(r.baseline)}): ${r.ratio.toFixed(2)}×`)
    return rows
  } finally {
    await runtime.dispose()
  }
}

const main = async () => {
  const own = args["redis-url"] ? undefined : await startRedis()
  const redisUrl = args["redis-url"] ?? own.url
  const port = Number(new URL(redisUrl).port)
  const client = new Redis(redisUrl)
  const runtime = ManagedRuntime.make(
    SessionStore.layer({ prefix: PREFIX, references: ["user_id"] }).pipe(Layer.provide(RedisClient.layerFromClient(client)))
  )
  const results = []
  try {
    const store = await runtime.runPromise(SessionStore)
    const ids = Array.from({ length: C }, () => randomBytes(18).toString("base64url"))
    for (const [i, id] of ids.entries()) await runtime.runPromise(store.set(id, { user_id: 1000 + i, ...PROFILE }))

    // Capture what the store sends for set(id, { user_id }), then take the spy off.
    let captured
    client.evalsha = (...a) => {
      captured = a.map(String)
      return Redis.prototype.evalsha.apply(client, a)
    }
    await runtime.runPromise(store.set(ids[0], { user_id: 999 }))
    delete client.evalsha
    const expected = ["2", `${PREFIX}:{${ids[0]}}`, `${PREFIX}:`, ids[0], String(TTL), "0", "1", "user_id", "user_id", "999"]
    const layoutKnown = captured !== undefined && JSON.stringify(captured.slice(1)) === JSON.stringify(expected)
    if (!layoutKnown) console.warn(`  ! SessionStore.set sent ${JSON.stringify(captured)}; the setSession comparisons are skipped`)
    const setShaArgs = (i, value) => [captured[0], 2, `${PREFIX}:{${ids[i]}}`, `${PREFIX}:`, ids[i], TTL, "0", 1, "user_id", "user_id", String(value)]

    let counter = 2_000_000
    const get = await measureRounds((s) => effectRate(runtime, s, (i) => store.get(ids[i])))
    const set = await measureRounds((s) => effectRate(runtime, s, (i) => store.set(ids[i], { user_id: ++counter })))
    const rawGet = await measureRounds((s) => promiseRate(s, (i) => client.hgetall(`${PREFIX}:{${ids[i]}}`)))
    const rawSet = layoutKnown ? await measureRounds((s) => promiseRate(s, (i) => client.evalsha(...setShaArgs(i, ++counter)))) : undefined
    console.log(`  SessionStore.get ${int(get.ops)} ops/s (ioredis hgetall ${int(rawGet.ops)})`)
    console.log(`  SessionStore.set ${int(set.ops)} ops/s${rawSet ? ` (ioredis evalsha setSession ${int(rawSet.ops)})` : ""}`)

    const hgetall = redisBenchmark(port, ["HGETALL", `${PREFIX}:{${ids[1]}}`])
    const smallSource = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1"
    const smallSha = await client.script("LOAD", smallSource)
    const small = redisBenchmark(port, ["EVALSHA", smallSha, "1", `${PREFIX}:small`, "user_id", "__rand_int__", String(TTL)], ["-r", "1000000"])
    const lib = layoutKnown
      ? redisBenchmark(port, ["EVALSHA", ...captured.slice(0, -1), "__rand_int__"], ["-r", "1000000"])
      : undefined
    console.log(`  redis-benchmark HGETALL ${int(hgetall.rps)}, EVALSHA small ${int(small.rps)}${lib ? `, EVALSHA setSession ${int(lib.rps)}` : ""} req/s`)

    results.push(
      { operation: "get", ops: get.ops, rounds: get.rounds, ioredis: rawGet.ops, against: "HGETALL (6-field hash)", baseline: hgetall.rps, ratio: get.ops / hgetall.rps },
      { operation: "set", ops: set.ops, rounds: set.rounds, ioredis: rawSet?.ops, against: "EVALSHA, small script (HSET + PEXPIRE)", baseline: small.rps, ratio: set.ops / small.rps }
    )
    if (lib) {
      results.push({
        operation: "set",
        ops: set.ops,
        rounds: set.rounds,
        ioredis: rawSet?.ops,
        against: "EVALSHA, the library's setSession script, same arguments",
        baseline: lib.rps,
        ratio: set.ops / lib.rps
      })
    }
    for (const r of results) console.log(`  ${r.operation} / ${r.against}: ${r.ratio.toFixed(2)}×`)
    const memory = await measureMemory(ids)
    return { options: { duration: DURATION, rounds: ROUNDS, concurrency: C }, redisBenchmark: { hgetall, small, lib: lib ?? null }, results, memory }
  } finally {
    await runtime.dispose()
    await client.quit()
    await own?.stop()
  }
}

main().then(
  (result) => {
    if (process.send) {
      process.send({ type: "result", result })
      process.disconnect()
    }
  },
  (error) => {
    if (process.send) {
      process.send({ type: "error", message: String(error?.stack ?? error) })
      process.disconnect()
    } else console.error(error)
    process.exitCode = 1
  }
)
