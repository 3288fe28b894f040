#!/usr/bin/env node
// The CPU time of one session read, layer by layer, in one process against a real
// redis-server, without HTTP: what an Effect handler pays before any middleware.
//   promise     Effect.promise of ioredis HGETALL, run on a runtime (the least an Effect read costs)
//   gen         the same inside an Effect.gen (what a handler written as a generator adds)
//   storeGet    SessionStore.get(id)
//   sessionGet  a per-request Session (Session.make over a fixed cookie) and its get()
// Variants alternate batch by batch; each batch runs 50 loops of sequential reads, one
// session each. Reported: the median CPU µs (process.cpuUsage) per read of each.
//   node bench/effect-ops.mjs [--batches 10] [--requests 4000]
import { parseArgs } from "node:util"
import { Redis } from "ioredis"
import { Effect, Layer, ManagedRuntime, Runtime } from "effect"
import { startRedis } from "../scripts/redis-server.mjs"
import { cpuPerCall } from "./lib/batch.mjs"
import { importLibrary } from "./lib/library.mjs"
import { median } from "./lib/report.mjs"

const { values: args } = parseArgs({
  options: { batches: { type: "string", default: "10" }, requests: { type: "string", default: "4000" } }
})
const BATCHES = Math.max(2, Math.round(Number(args.batches)))
const LOOPS = 50
const PER_LOOP = Math.max(1, Math.round(Number(args.requests) / LOOPS))

const { RedisClient, Session, SessionStore } = await importLibrary()
const redis = await startRedis()
const client = new Redis(redis.url)
const managed = ManagedRuntime.make(
  SessionStore.layer({ prefix: "bench-ops", references: { user_id: {} } }).pipe(Layer.provide(RedisClient.layerFromClient(client)))
)
try {
  const store = await managed.runPromise(SessionStore)
  const run = Runtime.runPromise(await managed.runtime())
  const ids = []
  for (let i = 0; i < LOOPS; i++) {
    const id = await run(store.createSessionId)
    await run(store.set(id, { user_id: i, name: `user ${i}`, role: "user" }))
    ids.push(id)
  }
  const fixedCookie = (id) => ({ read: () => id, write() {}, clear() {} })
  const variants = {
    promise: (id) => run(Effect.promise(() => client.hgetall(store.getSessionKey(id)))),
    gen: (id) =>
      run(
        Effect.gen(function* () {
          return yield* Effect.promise(() => client.hgetall(store.getSessionKey(id)))
        })
      ),
    storeGet: (id) => run(store.get(id)),
    sessionGet: (id) => run(Effect.suspend(() => Session.make(store, undefined, fixedCookie(id)).get()))
  }
  const batch = (read) =>
    cpuPerCall(ids, PER_LOOP, async (id) => {
      const session = await read(id)
      if (session.id !== id) throw new Error(`read ${JSON.stringify(Object.keys(session))}, not the session`)
    })
  const names = Object.keys(variants)
  for (const name of names) await batch(variants[name]) // warm-up
  const cpu = Object.fromEntries(names.map((name) => [name, []]))
  for (let b = 0; b < BATCHES; b++) {
    for (const name of b % 2 === 0 ? names : [...names].reverse()) cpu[name].push(await batch(variants[name]))
  }
  const base = median(cpu.promise)
  for (const name of names) {
    const us = median(cpu[name])
    console.log(`${name.padEnd(10)}  ${us.toFixed(1).padStart(6)} µs CPU/read  (${us >= base ? "+" : "−"}${Math.abs(us - base).toFixed(1)} over promise)`)
  }
} finally {
  await managed.dispose()
  await client.quit()
  await redis.stop()
}
