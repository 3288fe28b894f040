// Model-based test: random sequences of store operations (and expiry) over a few
// sessions, checked after every step against an in-memory model and the invariants.
// It runs over a single redis-server and over a 3-master Redis Cluster; on the
// cluster the invariants must hold as soon as each operation returns, although the
// hash and its reference sets are written by separate steps on different nodes.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, ManagedRuntime, TestClock, TestContext } from "effect"
import fc from "fast-check"
import { Cluster, Redis } from "ioredis"
import { memoryContents, memoryStats } from "../src/internal/store/memory.js"
import { RedisClient } from "../src/RedisClient.js"
import { SessionStore, type SessionStoreService } from "../src/SessionStore.js"
import { checkInvariants as checkRedis } from "./invariants.mjs"
import { deleteKeys, keysMatching, redisClusterNodes, redisUrl, uniquePrefix } from "./utils.js"

const REFS = ["user_id", "team"] as const
const FIELDS = [...REFS, "name"] as const
const VALUES = ["1", "2", "3"] as const
const SLOTS = 3
const DEFAULT_MAX_AGE = 3_600_000
const MAX_AGES = [undefined, 120_000, 7_200_000] as const

type Op =
  | { readonly op: "set"; readonly slot: number; readonly values: Record<string, string>; readonly maxAge: number | undefined }
  | { readonly op: "unset"; readonly slot: number; readonly fields: Array<string> }
  | { readonly op: "touch"; readonly slot: number; readonly maxAge: number | undefined }
  | { readonly op: "delete"; readonly slot: number }
  | { readonly op: "expire"; readonly slot: number }
  | { readonly op: "regenerate"; readonly slot: number }
  | { readonly op: "list"; readonly field: string; readonly value: string }
  | { readonly op: "revoke"; readonly field: string; readonly value: string }

const slot = fc.integer({ min: 0, max: SLOTS - 1 })
const field = fc.constantFrom(...FIELDS)
const refField = fc.constantFrom(...REFS)
const value = fc.constantFrom(...VALUES)
const maxAge = fc.constantFrom(...MAX_AGES)
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("set" as const), slot, values: fc.dictionary(field, value, { minKeys: 0, maxKeys: 3 }), maxAge }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("unset" as const), slot, fields: fc.uniqueArray(field, { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("touch" as const), slot, maxAge }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("expire" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("regenerate" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("list" as const), field: refField, value }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("revoke" as const), field: refField, value }) }
)

/** Cluster revokes keep their revoking set and tombstone ids this long (the default `timeout` is 2 s). */
const GRACE = 60_000

/**
 * What Redis must hold. `stale` lists the memberships expiry may leave behind: (field, value, id).
 * On a cluster, also what a revoke leaves behind for its grace period (every sequence runs
 * well within it): `revoking` (field, value) → the ids in its revoking set, `revoked` the ids
 * with a tombstone, and `left` each live session's left record (field, value pairs).
 */
class Model {
  readonly sessions = new Map<string, Map<string, string>>()
  readonly stale = new Set<string>()
  readonly revoking = new Map<string, Set<string>>()
  readonly revoked = new Set<string>()
  readonly left = new Map<string, Set<string>>()
  readonly ids: Array<string>
  constructor(ids: Array<string>) {
    this.ids = ids
  }
  /** The session leaves `value` of `field` (a write changed or removed it). */
  leave(id: string, field: string, value: string | undefined, next: string | undefined) {
    if (value === undefined || value === next) return
    const record = this.left.get(id) ?? new Set<string>()
    record.add(`${field}\u0000${value}`)
    this.left.set(id, record)
  }
  /** Whether a cluster regenerate of `id` is refused: a revoking set holds it for a value it holds or left. */
  frozen(id: string): boolean {
    const session = this.sessions.get(id)!
    for (const [pair, members] of this.revoking) {
      if (!members.has(id)) continue
      const [field, value] = pair.split("\u0000") as [string, string]
      if (session.get(field) === value || this.left.get(id)?.has(pair)) return true
    }
    return false
  }
  remove(id: string) {
    this.sessions.delete(id)
    this.left.delete(id)
  }
  holders(field: string, value: string): Array<string> {
    return [...this.sessions].filter(([, s]) => s.get(field) === value).map(([id]) => id).sort()
  }
  expire(id: string) {
    const session = this.sessions.get(id)
    if (!session) return
    this.left.delete(id)
    for (const ref of REFS) {
      const v = session.get(ref)
      if (v !== undefined) this.stale.add(`${ref}\u0000${v}\u0000${id}`)
    }
    this.sessions.delete(id)
  }
  prune(field: string, value: string) {
    for (const entry of this.stale) if (entry.startsWith(`${field}\u0000${value}\u0000`)) this.stale.delete(entry)
  }
}

/**
 * After every step: the invariants (test/invariants.mjs: key layout, TTLs, every live session in
 * the set of each value it holds and every set outliving its holders, a revoke's keys only on a
 * cluster and only as they should be), with exactly the stale memberships the model knows expiry
 * left; then Redis equals the model.
 */
const checkInvariants = async (redis: Redis | Cluster, model: Model, s: SessionStoreService) => {
  const report = await checkRedis({
    client: redis,
    prefix: s.prefix,
    references: REFS,
    grace: GRACE,
    staleMembers: ({ field, value, id }) => model.stale.has(`${field}\u0000${value}\u0000${id}`)
  })
  expect(report.violations.map((v) => v.message)).toEqual([])
  // The live sessions are the model's, each hash exactly as the model says.
  expect(report.found.sessions.sort()).toEqual([...model.sessions.keys()].sort())
  for (const [id, fields] of model.sessions) {
    expect(await redis.hgetall(s.getSessionKey(id))).toEqual({ id, ...Object.fromEntries(fields) })
  }
  // What a cluster revoke leaves (README, "Redis Cluster") is what the model says it left: each
  // revoking set holds ids the model put there, each tombstone is of an id the model revoked, and
  // each left record names exactly the values the session left.
  for (const { key, field, value } of report.found.revoking) {
    for (const member of await redis.smembers(key)) {
      expect(model.revoking.get(`${field}\u0000${value}`)?.has(member), `${member} in ${key}`).toBe(true)
    }
  }
  for (const { id } of report.found.tombstones) expect(model.revoked.has(id), `tombstone of ${id}`).toBe(true)
  for (const { key, id } of report.found.left) {
    const entries = await redis.hgetall(key)
    expect(Object.keys(entries).map((entry) => entry.replace(":", "\u0000")).sort(), key).toEqual([...(model.left.get(id) ?? [])].sort())
  }
}

/** Where a sequence runs: how its store is built and run, how a session expires, how the store is checked. */
interface Backend {
  readonly cluster: boolean
  readonly make: (prefix: string) => Promise<SessionStoreService>
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>
  /** What happens when a session's lifetime runs out. */
  readonly expire: (s: SessionStoreService, id: string) => Promise<void>
  readonly check: (model: Model, s: SessionStoreService) => Promise<void>
  readonly cleanup: (prefix: string) => Promise<void>
}

const options = (prefix: string) => ({ prefix, references: [...REFS], maxAge: DEFAULT_MAX_AGE })

const redisBackend = (redis: Redis | Cluster): Backend => ({
  cluster: redis instanceof Cluster,
  make: (prefix) => Effect.runPromise(SessionStore.make(options(prefix)).pipe(Effect.provide(RedisClient.layerFromClient(redis)))),
  run: Effect.runPromise,
  // What Redis does when a TTL runs out: the hash vanishes, the sets are not told. The
  // left record (cluster) has the hash's expiry and goes with it.
  expire: async (s, id) => {
    await redis.del(s.getSessionKey(id))
    await redis.del(`${s.getSessionKey(id)}:left`)
  },
  check: (model, s) => checkInvariants(redis, model, s),
  cleanup: async (prefix) => deleteKeys(redis, await keysMatching(redis, `${prefix}:*`))
})

/**
 * The memory store on a TestClock shared by the whole sequence: a session expires when the
 * clock passes its lifetime. After every step it equals the model, and holds nothing else
 * (its index exactly the live holders, its memory only the live sessions).
 */
const memoryBackend = (): Backend => {
  const runtime = ManagedRuntime.make(TestContext.TestContext)
  return {
    cluster: false,
    make: (prefix) => runtime.runPromise(SessionStore.makeMemory(options(prefix))),
    run: (effect) => runtime.runPromise(effect),
    expire: (s, id) => runtime.runPromise(Effect.zipRight(Effect.orDie(s.touch(id, 1)), TestClock.adjust(1))),
    check: async (model, s) => {
      for (const id of model.ids) {
        const fields = model.sessions.get(id)
        expect(await runtime.runPromise(s.get(id)), id).toEqual(fields === undefined ? {} : { id, ...Object.fromEntries(fields) })
      }
      const contents = memoryContents(s)!
      for (const ref of REFS) for (const v of VALUES) expect([...contents.members(ref, v)].sort(), `${ref}=${v}`).toEqual(model.holders(ref, v))
      // The reads above swept what had expired: only the model's sessions are held.
      expect(memoryStats(s)!.sessions).toBe(model.sessions.size)
    },
    cleanup: async () => {}
  }
}

const runSequence = async (backend: Backend, ops: ReadonlyArray<Op>, runIndex: number) => {
  const prefix = uniquePrefix(`model${runIndex}`)
  const s = await backend.make(prefix)
  const { cluster, run } = backend
  const model = new Model(await Promise.all(Array.from({ length: SLOTS }, () => run(s.createSessionId))))
  try {
    for (const op of ops) {
      switch (op.op) {
        case "set": {
          const id = model.ids[op.slot]!
          if (cluster && model.revoked.has(id) && !model.sessions.has(id)) {
            // A revoked id is not created again while its tombstone lives.
            const error = await run(Effect.flip(s.set(id, op.values, op.maxAge)))
            expect(error._tag).toBe("InvalidSessionId")
            break
          }
          await run(s.set(id, op.values, op.maxAge))
          const session = model.sessions.get(id) ?? new Map<string, string>()
          for (const [f, v] of Object.entries(op.values)) {
            if ((REFS as ReadonlyArray<string>).includes(f)) model.leave(id, f, session.get(f), v)
            session.set(f, v)
          }
          model.sessions.set(id, session)
          break
        }
        case "unset": {
          const id = model.ids[op.slot]!
          await run(s.unset(id, op.fields))
          for (const f of op.fields) {
            const session = model.sessions.get(id)
            if (session && (REFS as ReadonlyArray<string>).includes(f)) model.leave(id, f, session.get(f), undefined)
            session?.delete(f)
          }
          break
        }
        case "touch": {
          const id = model.ids[op.slot]!
          expect(await run(s.touch(id, op.maxAge))).toBe(model.sessions.has(id))
          break
        }
        case "delete": {
          const id = model.ids[op.slot]!
          expect(await run(s.delete(id))).toBe(model.sessions.has(id))
          model.remove(id)
          break
        }
        case "expire": {
          const id = model.ids[op.slot]!
          if (model.sessions.has(id)) await backend.expire(s, id)
          model.expire(id)
          break
        }
        case "regenerate": {
          const id = model.ids[op.slot]!
          const next = await run(s.regenerate(id))
          const session = model.sessions.get(id)
          if (session === undefined || (cluster && model.frozen(id))) expect(next).toBeUndefined()
          else {
            expect(next).toBeDefined()
            model.remove(id)
            model.sessions.set(next!, session)
            model.ids[op.slot] = next!
          }
          break
        }
        case "list": {
          const ids = await run(s.listByReference(op.field, op.value))
          expect(ids.sort()).toEqual(model.holders(op.field, op.value))
          model.prune(op.field, op.value)
          break
        }
        case "revoke": {
          const expected = model.holders(op.field, op.value)
          expect(await run(s.deleteByReference(op.field, op.value))).toBe(expected.length)
          if (cluster) {
            // The set's members join its revoking set (kept for the grace period); each that
            // held the value is deleted, and each without a session (now) gets a tombstone.
            const pair = `${op.field}\u0000${op.value}`
            const members = model.revoking.get(pair) ?? new Set<string>()
            for (const id of expected) members.add(id)
            for (const entry of model.stale) if (entry.startsWith(`${pair}\u0000`)) members.add(entry.slice(pair.length + 1))
            model.revoking.set(pair, members)
            for (const id of expected) model.remove(id)
            for (const id of members) if (!model.sessions.has(id)) model.revoked.add(id)
          } else {
            for (const id of expected) model.remove(id)
          }
          model.prune(op.field, op.value)
          break
        }
      }
      await backend.check(model, s)
    }
  } finally {
    await backend.cleanup(prefix)
  }
}

const modelSuite = (name: string, connect: () => Promise<Redis | Cluster | undefined>, numRuns: number) =>
  describe(`SessionStore model (${name})`, () => {
    let redis: Redis | Cluster | undefined
    let backend: Backend

    beforeAll(async () => {
      redis = await connect()
      backend = redis === undefined ? memoryBackend() : redisBackend(redis)
    })

    afterAll(async () => {
      await redis?.quit()
    })

    it(`random operation sequences keep the store equal to the model and its invariants true (${numRuns} runs)`, async () => {
      let run = 0
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => runSequence(backend, ops, run++)),
        { numRuns }
      )
      expect(run).toBeGreaterThanOrEqual(numRuns)
    }, 120_000)
  })

modelSuite("single server", async () => new Redis(redisUrl()), 200)

modelSuite(
  "cluster",
  async () => {
    const cluster = new Cluster(redisClusterNodes())
    await new Promise<void>((resolve, reject) => {
      cluster.once("ready", resolve)
      cluster.once("error", reject)
    })
    return cluster
  },
  200
)

modelSuite("memory", async () => undefined, 200)
