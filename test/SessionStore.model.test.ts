// Model-based test: random sequences of store operations (and expiry) over a few
// sessions, checked after every step against an in-memory model and the invariants.
// It runs over a single redis-server and over a 3-master Redis Cluster; on the
// cluster the invariants must hold as soon as each operation returns, although the
// hash and its reference sets are written by separate steps on different nodes.
//
// Each backend runs two stores: v3's (no controls) and one with the account controls
// (issue 13): an absolute lifetime, a cap on one referenced field, rolling reads. The
// memory store runs on a TestClock the model drives, so the model predicts every time
// (creation, last activity, both expiries) and clock steps kill sessions at their idle
// or absolute deadline. On Redis the time is the server's: the model does not move it
// (lifetimes are hours, a sequence takes milliseconds, so nothing dies of age and no read
// is due its update), it reads the last-activity times a cap compares from the hashes,
// and it checks that every hash's expiry is within its absolute deadline.
//
// One backend only, while developing: `npx vitest run test/SessionStore.model.test.ts -t memory`.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Clock, Effect, ManagedRuntime, Stream, TestClock, TestContext } from "effect"
import fc from "fast-check"
import { Cluster, Redis } from "ioredis"
import { CONTROL_FIELDS, CREATED_AT_FIELD, evictionOrder, LAST_SEEN_FIELD } from "../src/internal/store/controls.js"
import { memoryContents, memoryStats } from "../src/internal/store/memory.js"
import { toEffect } from "../src/internal/store/run.js"
import { backendOf } from "../src/internal/store/service.js"
import type { SessionEviction, SessionStoreOptions } from "../src/internal/store/types.js"
import { RedisClient } from "../src/RedisClient.js"
import { SessionStore, type SessionStoreService } from "../src/SessionStore.js"
import { checkInvariants as checkRedis } from "./invariants.mjs"
import { deleteKeys, keysMatching, redisClusterNodes, redisUrl, uniquePrefix } from "./utils.js"

const REFS = ["user_id", "team"] as const
const FIELDS = [...REFS, "name"] as const
const VALUES = ["1", "2", "3"] as const
const SLOTS = 4
const DEFAULT_MAX_AGE = 3_600_000
const MAX_AGES = [undefined, 120_000, 7_200_000] as const
/** The controlled store: sessions die 2 h after creation; at most 2 live sessions per user_id. */
const ABSOLUTE_MAX_AGE = 7_200_000
const CAP = 2
const ROLLING_INTERVAL = DEFAULT_MAX_AGE / 10
/**
 * On Redis, how far (ms) `lifetime`'s `expiresAt` may pass the absolute deadline: it adds a
 * PTTL (counted from Redis' command-time snapshot) to a TIME reading, which can be 1 ms apart.
 * The hash's own expiry (PEXPIRETIME) is checked exactly.
 */
const CLOCK_SLACK = 1
/** Clock steps (memory only): within, at and past the rolling interval, an idle lifetime, an absolute one. */
const STEPS = [1_000, ROLLING_INTERVAL, 1_800_000, DEFAULT_MAX_AGE, ABSOLUTE_MAX_AGE] as const

type Op =
  | { readonly op: "set"; readonly slot: number; readonly values: Record<string, string>; readonly maxAge: number | undefined }
  | { readonly op: "unset"; readonly slot: number; readonly fields: Array<string> }
  | { readonly op: "touch"; readonly slot: number; readonly maxAge: number | undefined }
  | { readonly op: "delete"; readonly slot: number }
  | { readonly op: "expire"; readonly slot: number }
  | { readonly op: "regenerate"; readonly slot: number }
  | { readonly op: "list"; readonly field: string; readonly value: string }
  | { readonly op: "revoke"; readonly field: string; readonly value: string }
  | { readonly op: "revokeOthers"; readonly slot: number; readonly field: string; readonly value: string }
  | { readonly op: "read"; readonly slot: number }
  | { readonly op: "sessions"; readonly field: string; readonly value: string }
  | { readonly op: "lifetime"; readonly slot: number }
  | { readonly op: "advance"; readonly millis: number }

const slot = fc.integer({ min: 0, max: SLOTS - 1 })
const field = fc.constantFrom(...FIELDS)
const refField = fc.constantFrom(...REFS)
// Mostly one value, so sessions share it (and compete for the cap) often.
const value = fc.oneof({ weight: 2, arbitrary: fc.constant(VALUES[0]) }, { weight: 1, arbitrary: fc.constantFrom(...VALUES) })
const maxAge = fc.constantFrom(...MAX_AGES)
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ op: fc.constant("set" as const), slot, values: fc.dictionary(field, value, { minKeys: 0, maxKeys: 3 }), maxAge })
  },
  // A login: the capped write (with controls), one more session for a user_id value.
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("set" as const), slot, values: fc.record({ user_id: value }), maxAge: fc.constant(undefined) })
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("unset" as const), slot, fields: fc.uniqueArray(field, { minLength: 1, maxLength: 3 }) })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("touch" as const), slot, maxAge }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("expire" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("regenerate" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("list" as const), field: refField, value }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("revoke" as const), field: refField, value }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("revokeOthers" as const), slot, field: refField, value }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("read" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("sessions" as const), field: refField, value }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("lifetime" as const), slot }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), millis: fc.constantFrom(...STEPS) }) }
)

/** Cluster revokes keep their revoking set and tombstone ids this long (the default `timeout` is 2 s). */
const GRACE = 60_000

/** A session's times as the model predicts them (epoch ms of the model's clock). */
interface Times {
  readonly createdAt: number
  lastSeen: number
  expiresAt: number
}

/**
 * What Redis must hold. `stale` lists the memberships expiry may leave behind: (field, value, id).
 * On a cluster, also what a revoke leaves behind for its grace period (every sequence runs
 * well within it): `revoking` (field, value) → the ids in its revoking set, `revoked` the ids
 * with a tombstone, and `left` each live session's left record (field, value pairs).
 * With `controls`, each live session's times: exact on the memory store (the model's clock
 * is its TestClock), only what the model compares on Redis (its clock stands still).
 */
class Model {
  readonly sessions = new Map<string, Map<string, string>>()
  readonly times = new Map<string, Times>()
  readonly stale = new Set<string>()
  readonly revoking = new Map<string, Set<string>>()
  readonly revoked = new Set<string>()
  readonly left = new Map<string, Set<string>>()
  readonly ids: Array<string>
  readonly controls: boolean
  now: number
  constructor(ids: Array<string>, controls: boolean, now: number) {
    this.ids = ids
    this.controls = controls
    this.now = now
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
    this.times.delete(id)
    this.left.delete(id)
  }
  holders(field: string, value: string): Array<string> {
    return [...this.sessions]
      .filter(([, s]) => s.get(field) === value)
      .map(([id]) => id)
      .sort()
  }
  expire(id: string) {
    const session = this.sessions.get(id)
    if (!session) return
    for (const ref of REFS) {
      const v = session.get(ref)
      if (v !== undefined) this.stale.add(`${ref}\u0000${v}\u0000${id}`)
    }
    this.remove(id)
  }
  prune(field: string, value: string, except?: string) {
    for (const entry of this.stale)
      if (entry.startsWith(`${field}\u0000${value}\u0000`) && !entry.endsWith(`\u0000${except}`)) this.stale.delete(entry)
  }
  /** The absolute deadline of a session created at `createdAt`, with controls. */
  deadline(createdAt: number): number {
    return this.controls ? createdAt + ABSOLUTE_MAX_AGE : Number.POSITIVE_INFINITY
  }
  /** A write (set, unset, touch) of a live session: its last activity now, its lifetime `ttl` within its deadline. */
  written(id: string, ttl: number) {
    const times = this.times.get(id)
    const createdAt = times?.createdAt ?? this.now
    this.times.set(id, { createdAt, lastSeen: this.now, expiresAt: Math.min(this.now + ttl, this.deadline(createdAt)) })
  }
  /** The clock moves on: every session whose time came is gone. */
  tick(millis: number) {
    this.now += millis
    for (const [id, times] of this.times) if (times.expiresAt <= this.now) this.expire(id)
  }
  /** The hash the model says the session holds (with controls, its times too). */
  hash(id: string): Record<string, string> {
    const fields = this.sessions.get(id)
    if (fields === undefined) return {}
    const times = this.times.get(id)!
    const stamps = this.controls ? { [CREATED_AT_FIELD]: String(times.createdAt), [LAST_SEEN_FIELD]: String(times.lastSeen) } : {}
    return { id, ...Object.fromEntries(fields), ...stamps }
  }
}

/** A hash without the store's reserved fields (their times are the server's on Redis). */
const withoutControls = (hash: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(hash).filter(([field]) => !CONTROL_FIELDS.includes(field)))

/**
 * After every step: the invariants (test/invariants.mjs: key layout, TTLs, every live session in
 * the set of each value it holds and every set outliving its holders, a revoke's keys only on a
 * cluster and only as they should be), with exactly the stale memberships the model knows expiry
 * left; then Redis equals the model. With controls, each hash has its times and expires by its
 * absolute deadline.
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
  for (const id of model.sessions.keys()) {
    const hash = await redis.hgetall(s.getSessionKey(id))
    expect(withoutControls(hash)).toEqual(withoutControls(model.hash(id)))
    if (!model.controls) continue
    const createdAt = Number(hash[CREATED_AT_FIELD])
    expect(Number(hash[LAST_SEEN_FIELD]), id).toBeGreaterThanOrEqual(createdAt)
    expect(await redis.pexpiretime(s.getSessionKey(id)), id).toBeLessThanOrEqual(createdAt + ABSOLUTE_MAX_AGE)
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
    expect(
      Object.keys(entries)
        .map((entry) => entry.replace(":", "\u0000"))
        .sort(),
      key
    ).toEqual([...(model.left.get(id) ?? [])].sort())
  }
}

/** Where a sequence runs: how its store is built and run, how a session expires, how the store is checked. */
interface Backend {
  readonly cluster: boolean
  /** Whether the model's clock is the store's (memory: a TestClock), so it predicts every time. */
  readonly timed: boolean
  readonly make: (options: SessionStoreOptions) => Promise<SessionStoreService>
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>
  /** The store's time now (the model's clock starts there). */
  readonly now: () => Promise<number>
  /** What happens when a session's lifetime runs out; how far the store's clock moved (ms). */
  readonly expire: (s: SessionStoreService, id: string) => Promise<number>
  /** Moves the store's clock; whether it could. */
  readonly advance: (millis: number) => Promise<boolean>
  /** A live session's last activity as stored, for the cap's order. */
  readonly lastSeen: (s: SessionStoreService, model: Model, id: string) => Promise<number>
  readonly check: (model: Model, s: SessionStoreService) => Promise<void>
  readonly cleanup: (prefix: string) => Promise<void>
  /** The ids a value's reference set holds now (Redis; stale ones included): what a cluster revoke freezes. */
  readonly members?: (s: SessionStoreService, field: string, value: string) => Promise<Array<string>>
}

const plainOptions = (prefix: string): SessionStoreOptions => ({ prefix, references: [...REFS], maxAge: DEFAULT_MAX_AGE })

const controlledOptions = (prefix: string, onEvict: (eviction: SessionEviction) => void): SessionStoreOptions => ({
  prefix,
  references: { user_id: { maxSessions: CAP }, team: {} },
  maxAge: DEFAULT_MAX_AGE,
  absoluteMaxAge: ABSOLUTE_MAX_AGE,
  rolling: true,
  onEvict
})

const redisBackend = (redis: Redis | Cluster): Backend => ({
  cluster: redis instanceof Cluster,
  timed: false,
  make: (options) => Effect.runPromise(SessionStore.make(options).pipe(Effect.provide(RedisClient.layerFromClient(redis)))),
  run: Effect.runPromise,
  now: async () => 0,
  // What Redis does when a TTL runs out: the hash vanishes, the sets are not told. The
  // left record (cluster) has the hash's expiry and goes with it.
  expire: async (s, id) => {
    await redis.del(s.getSessionKey(id))
    await redis.del(`${s.getSessionKey(id)}:left`)
    return 0
  },
  // Real time: hours of lifetime cannot pass in a test.
  advance: async () => false,
  lastSeen: async (s, _model, id) => Number(await redis.hget(s.getSessionKey(id), LAST_SEEN_FIELD)),
  check: (model, s) => checkInvariants(redis, model, s),
  cleanup: async (prefix) => deleteKeys(redis, await keysMatching(redis, `${prefix}:*`)),
  members: (s, field, value) => redis.smembers(s.getReferenceKey(field, value))
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
    timed: true,
    make: (options) => runtime.runPromise(SessionStore.makeMemory(options)),
    run: (effect) => runtime.runPromise(effect),
    now: () => runtime.runPromise(Clock.currentTimeMillis),
    expire: async (s, id) => {
      await runtime.runPromise(Effect.zipRight(Effect.orDie(s.touch(id, 1)), TestClock.adjust(1)))
      return 1
    },
    advance: async (millis) => {
      await runtime.runPromise(TestClock.adjust(millis))
      return true
    },
    lastSeen: async (_s, model, id) => model.times.get(id)!.lastSeen,
    check: async (model, s) => {
      const contents = memoryContents(s)!
      for (const id of model.ids) {
        expect(await runtime.runPromise(s.get(id)), id).toEqual(model.hash(id))
        if (model.sessions.has(id)) expect(contents.expiresAt(id), `${id} expires`).toBe(model.times.get(id)!.expiresAt)
      }
      for (const ref of REFS)
        for (const v of VALUES) expect([...contents.members(ref, v)].sort(), `${ref}=${v}`).toEqual(model.holders(ref, v))
      // The reads above swept what had expired: only the model's sessions are held.
      expect(memoryStats(s)!.sessions).toBe(model.sessions.size)
    },
    cleanup: async () => {}
  }
}

const runSequence = async (backend: Backend, ops: ReadonlyArray<Op>, runIndex: number, controls: boolean) => {
  const prefix = uniquePrefix(`model${runIndex}`)
  const evictions: Array<SessionEviction> = []
  const s = await backend.make(controls ? controlledOptions(prefix, (eviction) => evictions.push(eviction)) : plainOptions(prefix))
  const { cluster, run, timed } = backend
  const actions = backendOf(s)
  const ids = await Promise.all(Array.from({ length: SLOTS }, () => run(s.createSessionId)))
  const model = new Model(ids, controls, await backend.now())
  // A revoke of the value's holders but `except`.
  const revoke = async (field: string, value: string, except: string | undefined) => {
    const expected = model.holders(field, value).filter((id) => id !== except)
    // Which stale members the set still holds is the store's to decide (a capped write prunes
    // the ones it meets), so a cluster revoke's frozen members are read, not predicted.
    const inSet = cluster ? await backend.members!(s, field, value) : []
    expect(await run(s.deleteByReference(field, value, { except }))).toBe(expected.length)
    if (cluster) {
      // The set's members (but the spared one) join its revoking set (kept for the grace period);
      // each that held the value is deleted, and each without a session (now) gets a tombstone.
      const pair = `${field}\u0000${value}`
      const members = model.revoking.get(pair) ?? new Set<string>()
      for (const id of expected) members.add(id)
      for (const id of inSet) if (id !== except && model.stale.has(`${pair}\u0000${id}`)) members.add(id)
      model.revoking.set(pair, members)
      for (const id of expected) model.remove(id)
      for (const id of members) if (!model.sessions.has(id)) model.revoked.add(id)
    } else {
      for (const id of expected) model.remove(id)
    }
    // A spared member stays in the set, stale or not.
    model.prune(field, value, except)
  }
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
          // A write that joins user_id's value competes for it: the least recently active
          // other holders beyond the cap are evicted, with all their references.
          const session = model.sessions.get(id) ?? new Map<string, string>()
          const joins =
            controls && op.values["user_id"] !== undefined && session.get("user_id") !== op.values["user_id"]
              ? op.values["user_id"]
              : undefined
          const others = joins === undefined ? [] : model.holders("user_id", joins).filter((other) => other !== id)
          const candidates = await Promise.all(
            others.map(async (other) => ({ id: other, lastSeenAt: await backend.lastSeen(s, model, other) }))
          )
          const evicted = evictionOrder(candidates, CAP)
          evictions.length = 0
          await run(s.set(id, op.values, op.maxAge))
          for (const [f, v] of Object.entries(op.values)) {
            if ((REFS as ReadonlyArray<string>).includes(f)) model.leave(id, f, session.get(f), v)
            session.set(f, v)
          }
          model.sessions.set(id, session)
          model.written(id, op.maxAge ?? DEFAULT_MAX_AGE)
          for (const other of evicted) model.remove(other)
          expect(evictions).toEqual(evicted.length === 0 ? [] : [{ field: "user_id", value: joins, evicted: evicted.length }])
          break
        }
        case "unset": {
          const id = model.ids[op.slot]!
          expect(await run(s.unset(id, op.fields))).toBe(model.sessions.has(id))
          for (const f of op.fields) {
            const session = model.sessions.get(id)
            if (session && (REFS as ReadonlyArray<string>).includes(f)) model.leave(id, f, session.get(f), undefined)
            session?.delete(f)
          }
          if (model.sessions.has(id)) model.written(id, DEFAULT_MAX_AGE)
          break
        }
        case "touch": {
          const id = model.ids[op.slot]!
          expect(await run(s.touch(id, op.maxAge))).toBe(model.sessions.has(id))
          if (model.sessions.has(id)) model.written(id, op.maxAge ?? DEFAULT_MAX_AGE)
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
          const moved = model.sessions.has(id) ? await backend.expire(s, id) : 0
          model.expire(id)
          model.tick(moved)
          break
        }
        case "advance": {
          if (await backend.advance(op.millis)) model.tick(op.millis)
          break
        }
        case "regenerate": {
          const id = model.ids[op.slot]!
          const next = await run(s.regenerate(id))
          const session = model.sessions.get(id)
          if (session === undefined || (cluster && model.frozen(id))) expect(next).toBeUndefined()
          else {
            expect(next).toBeDefined()
            // The data, its creation time and its remaining lifetime move to the new id.
            const times = model.times.get(id)!
            model.remove(id)
            model.sessions.set(next!, session)
            model.times.set(next!, { ...times, lastSeen: controls ? model.now : times.lastSeen })
            model.ids[op.slot] = next!
          }
          break
        }
        case "read": {
          // A Session's read: with rolling on, renews the idle lifetime once per rolling interval.
          const id = model.ids[op.slot]!
          const expected = model.hash(id)
          const { session, renewedTtl } = await run(toEffect(actions.redis, actions.actions.read(id, undefined, undefined)))
          expect(timed ? session : withoutControls(session)).toEqual(timed ? expected : withoutControls(expected))
          const times = model.times.get(id)
          let renewal: number | undefined
          if (controls && times !== undefined && model.now - times.lastSeen >= ROLLING_INTERVAL) {
            times.lastSeen = model.now
            renewal = Math.min(Math.max(times.expiresAt - model.now, DEFAULT_MAX_AGE), model.deadline(times.createdAt) - model.now)
            times.expiresAt = model.now + renewal
          }
          expect(renewedTtl).toBe(renewal)
          break
        }
        case "lifetime": {
          const id = model.ids[op.slot]!
          const lifetime = await run(s.lifetime(id))
          const times = model.times.get(id)
          if (times === undefined) expect(lifetime).toBeUndefined()
          else if (timed) {
            const absolute = controls ? { createdAt: times.createdAt, absoluteExpiresAt: model.deadline(times.createdAt) } : {}
            expect(lifetime).toEqual({ expiresAt: times.expiresAt, ...absolute })
          } else if (controls) {
            expect(lifetime!.absoluteExpiresAt).toBe(lifetime!.createdAt! + ABSOLUTE_MAX_AGE)
            expect(lifetime!.expiresAt).toBeLessThanOrEqual(lifetime!.absoluteExpiresAt! + CLOCK_SLACK)
          } else expect(Object.keys(lifetime!)).toEqual(["expiresAt"])
          break
        }
        case "list": {
          const ids = await run(s.listByReference(op.field, op.value))
          expect(ids.sort()).toEqual(model.holders(op.field, op.value))
          model.prune(op.field, op.value)
          break
        }
        case "sessions": {
          const listed = [...(await run(Stream.runCollect(s.listSessions(op.field, op.value))))]
          expect(listed.map((info) => info.id).sort()).toEqual(model.holders(op.field, op.value))
          if (timed) {
            for (const info of listed) {
              const times = model.times.get(info.id)!
              const stamps = controls
                ? { createdAt: times.createdAt, lastSeenAt: times.lastSeen, absoluteExpiresAt: model.deadline(times.createdAt) }
                : {}
              expect(info).toEqual({ id: info.id, expiresAt: times.expiresAt, ...stamps })
            }
          }
          model.prune(op.field, op.value)
          break
        }
        case "revoke":
          await revoke(op.field, op.value, undefined)
          break
        case "revokeOthers":
          await revoke(op.field, op.value, model.ids[op.slot]!)
          break
      }
      await backend.check(model, s)
    }
  } finally {
    await backend.cleanup(prefix)
  }
}

// Sequences with controls are longer: a cap is exceeded only once enough logins share a value.
const SHORT = { minLength: 1, maxLength: 25 }
const LONG = { minLength: 10, maxLength: 40 }

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

    for (const controls of [false, true]) {
      const store = controls ? "absoluteMaxAge, a maxSessions cap, rolling reads" : "no controls"
      it(`random operation sequences keep the store equal to the model and its invariants true (${store}; ${numRuns} runs)`, async () => {
        let run = 0
        await fc.assert(
          fc.asyncProperty(fc.array(opArb, controls ? LONG : SHORT), (ops) => runSequence(backend, ops, run++, controls)),
          { numRuns }
        )
        expect(run).toBeGreaterThanOrEqual(numRuns)
      }, 120_000)
    }
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
