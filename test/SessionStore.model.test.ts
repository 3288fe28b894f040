// Model-based test: random sequences of store operations (and expiry) over a few
// sessions, checked after every step against an in-memory model and the invariants.
// It runs over a single redis-server and over a 3-master Redis Cluster; on the
// cluster the invariants must hold as soon as each operation returns, although the
// hash and its reference sets are written by separate steps on different nodes.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { Cluster, Redis } from "ioredis"
import { RedisClient } from "../src/RedisClient.js"
import { SessionStore, type SessionStoreService } from "../src/SessionStore.js"
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

/** What Redis must hold. `stale` lists the memberships expiry may leave behind: (field, value, id). */
class Model {
  readonly sessions = new Map<string, Map<string, string>>()
  readonly stale = new Set<string>()
  readonly ids: Array<string>
  constructor(ids: Array<string>) {
    this.ids = ids
  }
  holders(field: string, value: string): Array<string> {
    return [...this.sessions].filter(([, s]) => s.get(field) === value).map(([id]) => id).sort()
  }
  expire(id: string) {
    const session = this.sessions.get(id)
    if (!session) return
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

const checkInvariants = async (redis: Redis | Cluster, model: Model, s: SessionStoreService) => {
  // Every live session: the hash equals the model, and each referenced value's set holds it and
  // expires no earlier than the hash. Expiries are compared as absolute times (PEXPIRETIME): two
  // PTTLs read a millisecond apart could differ by one, and on a cluster the keys are on different nodes.
  for (const [id, fields] of model.sessions) {
    expect(await redis.hgetall(s.getSessionKey(id))).toEqual({ id, ...Object.fromEntries(fields) })
    const hashExpiry = await redis.pexpiretime(s.getSessionKey(id))
    expect(hashExpiry, `${id} has a TTL`).toBeGreaterThan(0)
    for (const ref of REFS) {
      const v = fields.get(ref)
      if (v === undefined) continue
      const [setExpiry, member] = await Promise.all([
        redis.pexpiretime(s.getReferenceKey(ref, v)),
        redis.sismember(s.getReferenceKey(ref, v), id)
      ])
      expect(member, `${id} in ${ref}=${v}`).toBe(1)
      expect(setExpiry, `expiry of ${ref}=${v}`).toBeGreaterThanOrEqual(hashExpiry)
    }
  }
  // Every key under the prefix (on every master of a cluster): a live session's hash, or a
  // reference set whose members are exactly right.
  for (const key of await keysMatching(redis, `${s.prefix}:*`)) {
    // v3.0.0's layout: `${prefix}:{${id}}` and `${prefix}:${field}:{${value}}`.
    const rest = key.slice(s.prefix.length + 1)
    expect(rest, `${key} has hash-tag braces`).toMatch(/^(?:[a-z_]+:)?\{.*\}$/)
    const type = await redis.type(key)
    if (type === "hash") {
      expect(rest.startsWith("{"), `${key} is a session key`).toBe(true)
      expect(model.sessions.has(rest.slice(1, -1)), `stray hash ${rest}`).toBe(true)
      continue
    }
    expect(type).toBe("set")
    const ref = rest.slice(0, rest.indexOf(":"))
    const v = rest.slice(ref.length + 2, -1)
    expect(await redis.pttl(key), `${key} has a TTL`).toBeGreaterThan(0)
    for (const id of await redis.smembers(key)) {
      const holds = model.sessions.get(id)?.get(ref) === v
      const stale = model.stale.has(`${ref}\u0000${v}\u0000${id}`)
      expect(holds || stale, `${id} must not be in ${ref}=${v}`).toBe(true)
    }
  }
}

const runSequence = async (redis: Redis | Cluster, ops: ReadonlyArray<Op>, run: number) => {
  const prefix = uniquePrefix(`model${run}`)
  const s = await Effect.runPromise(
    SessionStore.make({ prefix, references: [...REFS], maxAge: DEFAULT_MAX_AGE }).pipe(Effect.provide(RedisClient.layerFromClient(redis)))
  )
  expect(s.redis.isCluster).toBe(redis instanceof Cluster)
  const model = new Model(await Promise.all(Array.from({ length: SLOTS }, () => Effect.runPromise(s.createSessionId))))
  try {
    for (const op of ops) {
      switch (op.op) {
        case "set": {
          const id = model.ids[op.slot]!
          await Effect.runPromise(s.set(id, op.values, op.maxAge))
          const session = model.sessions.get(id) ?? new Map<string, string>()
          for (const [f, v] of Object.entries(op.values)) session.set(f, v)
          model.sessions.set(id, session)
          break
        }
        case "unset": {
          const id = model.ids[op.slot]!
          await Effect.runPromise(s.unset(id, op.fields))
          for (const f of op.fields) model.sessions.get(id)?.delete(f)
          break
        }
        case "touch": {
          const id = model.ids[op.slot]!
          expect(await Effect.runPromise(s.touch(id, op.maxAge))).toBe(model.sessions.has(id))
          break
        }
        case "delete": {
          const id = model.ids[op.slot]!
          expect(await Effect.runPromise(s.delete(id))).toBe(model.sessions.has(id))
          model.sessions.delete(id)
          break
        }
        case "expire": {
          // What Redis does when a TTL runs out: the hash vanishes, the sets are not told.
          const id = model.ids[op.slot]!
          await redis.del(s.getSessionKey(id))
          model.expire(id)
          break
        }
        case "regenerate": {
          const id = model.ids[op.slot]!
          const next = await Effect.runPromise(s.regenerate(id))
          const session = model.sessions.get(id)
          if (session === undefined) expect(next).toBeUndefined()
          else {
            expect(next).toBeDefined()
            model.sessions.delete(id)
            model.sessions.set(next!, session)
            model.ids[op.slot] = next!
          }
          break
        }
        case "list": {
          const ids = await Effect.runPromise(s.listByReference(op.field, op.value))
          expect(ids.sort()).toEqual(model.holders(op.field, op.value))
          model.prune(op.field, op.value)
          break
        }
        case "revoke": {
          const expected = model.holders(op.field, op.value)
          expect(await Effect.runPromise(s.deleteByReference(op.field, op.value))).toBe(expected.length)
          for (const id of expected) model.sessions.delete(id)
          model.prune(op.field, op.value)
          break
        }
      }
      await checkInvariants(redis, model, s)
    }
  } finally {
    await deleteKeys(redis, await keysMatching(redis, `${prefix}:*`))
  }
}

const modelSuite = (name: string, connect: () => Promise<Redis | Cluster>, numRuns: number) =>
  describe(`SessionStore model (${name})`, () => {
    let redis: Redis | Cluster

    beforeAll(async () => {
      redis = await connect()
    })

    afterAll(async () => {
      await redis.quit()
    })

    it(`random operation sequences keep Redis equal to the model and the invariants true (${numRuns} runs)`, async () => {
      let run = 0
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => runSequence(redis, ops, run++)),
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
