// What is specific to a Redis Cluster: the client layer, keys spread over nodes,
// per-node script caches, concurrent writers, and writes interrupted half-way.
// (The whole store contract and the model test also run on the cluster.)
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Layer, Stream } from "effect"
import { Cluster } from "ioredis"
import { clusterAddReference } from "../src/internal/store/lua/clusterAddReference.js"
import { clusterDeleteSession } from "../src/internal/store/lua/clusterDeleteSession.js"
import { clusterFreezeReference, clusterKeepRevoking } from "../src/internal/store/lua/clusterFreezeReference.js"
import { clusterRevokeSession } from "../src/internal/store/lua/clusterRevokeSession.js"
import { clusterRegenerateSnapshot } from "../src/internal/store/lua/regenerateSession.js"
import { clusterReadState } from "../src/internal/store/lua/clusterReadState.js"
import { clusterWriteSession } from "../src/internal/store/lua/clusterWriteSession.js"
import type { Action } from "../src/internal/store/action.js"
import { SCAN_BATCH } from "../src/internal/store/plan.js"
import { toEffect } from "../src/internal/store/run.js"
import type { StoreActions } from "../src/internal/store/service.js"
import { backendOf } from "../src/internal/store/service.js"
import { RedisClient, RedisTimeoutError } from "../src/RedisClient.js"
import type { RedisError } from "../src/SessionError.js"
import { SessionStore, type SessionStoreOptions, type SessionStoreService } from "../src/SessionStore.js"
import { commandStats } from "./commands.js"
import { checkInvariants } from "./invariants.mjs"
import { deleteKeys, keysMatching, redisClusterNodes, uniquePrefix } from "./utils.js"

const REFS = ["user_id", "team"]

let cluster: Cluster

beforeAll(async () => {
  cluster = new Cluster(redisClusterNodes())
  await new Promise<void>((resolve, reject) => {
    cluster.once("ready", resolve)
    cluster.once("error", reject)
  })
})

afterAll(async () => {
  await cluster.quit()
})

const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

const storeOver = (client: Cluster, prefix: string): Promise<SessionStoreService> =>
  run(SessionStore.make({ prefix, references: REFS }).pipe(Effect.provide(RedisClient.layerFromClient(client))))

const cleanUp = async (prefix: string) => deleteKeys(cluster, await keysMatching(cluster, `${prefix}:*`))

const slotOf = (key: string) => cluster.cluster("KEYSLOT", key) as Promise<number>

describe("RedisClient over a cluster", () => {
  it.live("layer({ cluster }) is ready on every master when built and quits when released", () =>
    Effect.gen(function* () {
      const client = yield* Effect.scoped(
        Effect.gen(function* () {
          const redis = yield* RedisClient.make({ cluster: { nodes: redisClusterNodes() } })
          expect(redis.isCluster).toBe(true)
          expect(redis.client).toBeInstanceOf(Cluster)
          expect(redis.client.status).toBe("ready")
          expect((redis.client as Cluster).nodes("master")).toHaveLength(3)
          expect(yield* redis.use("PING", (c) => c.ping())).toBe("PONG")
          return redis.client
        })
      )
      expect(client.status).toBe("end")
    })
  )

  it.effect("cluster options that cannot apply fail with SessionConfigError", () =>
    Effect.gen(function* () {
      const cases = [
        [{ cluster: { nodes: [] } }, "cluster.nodes"],
        [{ url: "redis://127.0.0.1:6379", cluster: { nodes: redisClusterNodes() } }, "url"],
        [{ db: 1, cluster: { nodes: redisClusterNodes() } }, "db"]
      ] as const
      for (const [config, option] of cases) {
        const error = yield* Effect.flip(Effect.scoped(RedisClient.make(config)))
        expect(error).toMatchObject({ _tag: "SessionConfigError", option })
      }
    })
  )

  it.live("unreachable start-up nodes fail the layer with RedisError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.scoped(
          RedisClient.make({
            cluster: { nodes: ["127.0.0.1:1"], options: { clusterRetryStrategy: () => null } },
            connectTimeout: "1 second"
          })
        )
      )
      expect(error._tag).toBe("RedisError")
    })
  )
})

describe("SessionStore on a cluster", () => {
  it("keeps a session's hash and its reference sets in different slots (what the protocol is for)", async () => {
    const prefix = uniquePrefix("cluster-slots")
    const store = await storeOver(cluster, prefix)
    const id = await run(store.createSessionId)
    await run(store.set(id, { user_id: 1, team: "a" }))
    const slots = new Set(
      await Promise.all([store.getSessionKey(id), store.getReferenceKey("user_id", 1), store.getReferenceKey("team", "a")].map(slotOf))
    )
    expect(slots.size).toBe(3)
    expect(await run(store.listByReference("user_id", 1))).toEqual([id])
    await cleanUp(prefix)
  })

  it("loads its scripts on each node again after SCRIPT FLUSH on every master", async () => {
    const prefix = uniquePrefix("cluster-scripts")
    const store = await storeOver(cluster, prefix)
    await Promise.all(cluster.nodes("master").map((node) => node.script("FLUSH")))
    const ids = await Promise.all(Array.from({ length: 20 }, () => run(store.createSessionId)))
    for (const [i, id] of ids.entries()) await run(store.set(id, { user_id: i % 3, team: "s" }))
    expect((await run(store.listByReference("team", "s"))).sort()).toEqual([...ids].sort())
    expect(await run(store.deleteByReference("team", "s"))).toBe(20)
    // What a cluster revoke leaves for its grace period (60 s here): the revoking set, and a
    // tombstone per revoked id; nothing else.
    const left = await keysMatching(cluster, `${prefix}:*`)
    expect(left.sort()).toEqual([`${prefix}:team:{s}:revoking`, ...ids.map((id) => `${prefix}:{${id}}:revoked`)].sort())
    for (const key of left) {
      const ttl = await cluster.pttl(key)
      expect(ttl).toBeGreaterThan(50_000)
      expect(ttl).toBeLessThanOrEqual(60_000)
    }
  })

  it("concurrent writes to one session changing different referenced fields converge to exact sets", async () => {
    const prefix = uniquePrefix("cluster-race")
    const store = await storeOver(cluster, prefix)
    const id = await run(store.createSessionId)
    await run(store.set(id, { user_id: "u0", team: "t0" }))
    const ops = Array.from({ length: 120 }, (_, i) => {
      switch (i % 6) {
        case 0:
          return store.set(id, { user_id: `u${i % 5}` })
        case 1:
          return store.set(id, { team: `t${i % 4}`, name: `n${i}` })
        case 2:
          return store.set(id, { user_id: `u${i % 5}`, team: `t${i % 4}` })
        case 3:
          return store.touch(id, 3_600_000)
        case 4:
          return store.unset(id, [i % 12 === 4 ? "team" : "name"])
        default:
          return store.setExisting(id, { team: `t${i % 4}` })
      }
    })
    await run(Effect.all(ops, { concurrency: "unbounded", discard: true }))
    // Exact sets: the id is in the set of (field, value) exactly when the hash holds it, and
    // every set holding it outlives the hash (test/invariants.mjs, no stale member allowed).
    const session = await run(store.get(id))
    const report = await checkInvariants({ client: cluster, prefix, references: REFS, staleMembers: "none" })
    expect(report.violations.map((v) => v.message)).toEqual([])
    expect(report.found.sessions).toEqual([id])
    expect(report.memberships).toBe(REFS.filter((field) => session[field] !== undefined).length)
    await cleanUp(prefix)
  })

  it("checks inputs exactly like the standalone store, before sending anything", async () => {
    const prefix = uniquePrefix("cluster-invalid")
    const store = await storeOver(cluster, prefix)
    const bad = "short"
    const good = "abcdefghijklmnopqrstuvwx"
    const cases = [
      [store.set(bad, { a: 1 }), "InvalidSessionId"],
      [store.setExisting(bad, { a: 1 }), "InvalidSessionId"],
      [store.unset(bad, ["a"]), "InvalidSessionId"],
      [store.touch(bad), "InvalidSessionId"],
      [store.delete(bad), "InvalidSessionId"],
      [store.regenerate(bad), "InvalidSessionId"],
      [store.regenerate(good, bad), "InvalidSessionId"],
      [store.regenerate(good, good), "InvalidSessionId"],
      [store.set(good, { user_id: 1, bad: { nested: true } } as never), "InvalidSessionData"],
      [store.set(good, { id: "x" }), "InvalidSessionData"],
      [store.set(good, { a: 1 }, "soon"), "InvalidSessionData"],
      [store.unset(good, ["id"]), "InvalidSessionData"],
      [store.listByReference("name", "x"), "InvalidSessionData"],
      [store.deleteByReference("name", "x"), "InvalidSessionData"]
    ] as const
    for (const [effect, tag] of cases) {
      const exit = await Effect.runPromiseExit(effect as Effect.Effect<unknown, { readonly _tag: string }>)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : "no failure").toBe(tag)
    }
    expect(await keysMatching(cluster, `${prefix}:*`)).toEqual([])
  })
})

// ---- Interrupted writes ----
//
// A client that "crashes" after `budget` commands: later commands are never sent
// and reject, as if the process died there. Running an operation with budgets
// 0, 1, 2, … stops it after every step of its protocol in turn.
// The library listens to its client's connection events and reads each master's
// maxmemory-policy once (RedisClient); a stand-in that counts session commands takes those
// listeners without counting them (nor passing them on to the shared test client, which
// would collect one set per stand-in), and hands `nodes()` through as it is.
const EVENT_METHODS = new Set<PropertyKey>(["on", "once", "off", "addListener", "removeListener", "listenerCount"])
const ignoredEvents = (property: PropertyKey, receiver: unknown, target: Cluster) =>
  property === "nodes" ? target.nodes.bind(target) : () => (property === "listenerCount" ? 0 : receiver)
const isNotACommand = (property: PropertyKey) => EVENT_METHODS.has(property) || property === "nodes"

const crashingClient = (client: Cluster, budget: number): Cluster => {
  let calls = 0
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== "function") return value
      if (isNotACommand(property)) return ignoredEvents(property, receiver, target)
      return (...args: Array<unknown>) => {
        calls += 1
        if (calls > budget) return Promise.reject(new Error("simulated crash"))
        return (value as (...a: Array<unknown>) => unknown).apply(target, args)
      }
    }
  })
}

interface Fixture {
  readonly store: SessionStoreService
  /** Every session id the scenario may create. */
  readonly ids: ReadonlyArray<string>
}

interface Scenario {
  readonly name: string
  /** The (field, value) sets to check afterwards. */
  readonly pairs: ReadonlyArray<readonly [string, string]>
  readonly setup: (f: Fixture) => Effect.Effect<unknown, unknown>
  readonly op: (store: SessionStoreService, ids: ReadonlyArray<string>) => Effect.Effect<unknown, unknown>
}

const HOUR = 3_600_000

const scenarios: ReadonlyArray<Scenario> = [
  {
    name: "set moving a referenced value (and extending the lifetime)",
    pairs: [
      ["user_id", "1"],
      ["user_id", "2"],
      ["team", "x"]
    ],
    setup: ({ store, ids: [a, b] }) => Effect.all([store.set(a!, { user_id: 1, team: "x" }, 60_000), store.set(b!, { user_id: 1 })]),
    op: (store, [a]) => store.set(a!, { user_id: 2, name: "n" }, HOUR)
  },
  {
    name: "set creating a session",
    pairs: [
      ["user_id", "1"],
      ["team", "y"]
    ],
    setup: ({ store, ids: [, b] }) => store.set(b!, { user_id: 1 }),
    op: (store, [a]) => store.set(a!, { user_id: 1, team: "y" })
  },
  {
    name: "setExisting changing a referenced value",
    pairs: [
      ["team", "x"],
      ["team", "z"],
      ["user_id", "1"]
    ],
    setup: ({ store, ids: [a] }) => store.set(a!, { team: "x", user_id: 1 }, 60_000),
    op: (store, [a]) => store.setExisting(a!, { team: "z" }, HOUR)
  },
  {
    name: "unset of a referenced field",
    pairs: [
      ["user_id", "1"],
      ["team", "x"]
    ],
    setup: ({ store, ids: [a] }) => store.set(a!, { user_id: 1, team: "x" }, 60_000),
    op: (store, [a]) => store.unset(a!, ["user_id"], HOUR)
  },
  {
    name: "touch extending the lifetime",
    pairs: [
      ["user_id", "1"],
      ["team", "x"]
    ],
    setup: ({ store, ids: [a, b] }) =>
      Effect.all([store.set(a!, { user_id: 1, team: "x" }, 60_000), store.set(b!, { user_id: 1 }, 60_000)]),
    op: (store, [a]) => store.touch(a!, HOUR)
  },
  {
    name: "delete",
    pairs: [
      ["user_id", "1"],
      ["team", "x"]
    ],
    setup: ({ store, ids: [a, b] }) => Effect.all([store.set(a!, { user_id: 1, team: "x" }), store.set(b!, { user_id: 1 })]),
    op: (store, [a]) => store.delete(a!)
  },
  {
    name: "regenerate",
    pairs: [
      ["user_id", "1"],
      ["team", "x"]
    ],
    setup: ({ store, ids: [a, b] }) => Effect.all([store.set(a!, { user_id: 1, team: "x" }), store.set(b!, { user_id: 1 })]),
    op: (store, [a, , , target]) => store.regenerate(a!, target!, HOUR)
  },
  {
    name: "deleteByReference",
    pairs: [
      ["user_id", "1"],
      ["team", "x"],
      ["team", "y"]
    ],
    setup: ({ store, ids: [a, b, c] }) =>
      Effect.all([
        store.set(a!, { user_id: 1, team: "x" }),
        store.set(b!, { user_id: 1, team: "y" }),
        store.set(c!, { user_id: 2, team: "x" })
      ]),
    op: (store) => store.deleteByReference("user_id", 1)
  },
  {
    name: "listByReference pruning an expired session",
    pairs: [
      ["user_id", "1"],
      ["team", "x"]
    ],
    setup: ({ store, ids: [a, b] }) =>
      Effect.all([store.set(a!, { user_id: 1, team: "x" }), store.set(b!, { user_id: 1 })]).pipe(
        // Expiry removes the hash and nothing else, exactly like this DEL.
        Effect.zipRight(Effect.promise(() => cluster.del(store.getSessionKey(a!))))
      ),
    op: (store) => store.listByReference("user_id", 1)
  }
]

/** Ids whose hash exists and holds field = value, straight from Redis. */
const holdersOf = async (store: SessionStoreService, ids: ReadonlyArray<string>, field: string, value: string) => {
  const held = await Promise.all(ids.map((id) => cluster.hget(store.getSessionKey(id), field)))
  return ids.filter((_, i) => held[i] === value).sort()
}

/**
 * The guarantee after an interruption at any point (README, "Redis Cluster", "Guarantees"),
 * checked by test/invariants.mjs: no live holder is missing from its set — or, a revoke
 * stopped after its first step, from its revoking set, where listByReference still finds it
 * and a new revoke finishes it — and that set lives at least as long; every set has a TTL; an
 * interruption leaves nothing worse than stale members (any kind), on every key under the
 * prefix. The readers return exactly the live holders. Then the convergence step (one
 * listByReference per set) leaves every set exact, and deleteByReference deletes exactly the
 * holders.
 */
const checkAfterInterruption = async (label: string, store: SessionStoreService, scenario: Scenario, ids: ReadonlyArray<string>) => {
  const invariants = (staleMembers: "any" | "none") =>
    checkInvariants({ client: cluster, prefix: store.prefix, references: REFS, staleMembers, interruptedRevokes: true })
  const before = await invariants("any")
  expect(
    before.violations.map((v) => v.message),
    label
  ).toEqual([])
  // The check saw the live holders of the scenario's pairs (it was not run on an empty prefix).
  let held = 0
  for (const [field, value] of scenario.pairs) held += (await holdersOf(store, ids, field, value)).length
  expect(before.memberships + before.frozenMemberships, `${label}: memberships checked`).toBeGreaterThanOrEqual(held)
  for (const [field, value] of scenario.pairs) {
    const listed = (await run(store.listByReference(field, value))).sort()
    expect(listed, `${label}: listByReference(${field}, ${value})`).toEqual(await holdersOf(store, ids, field, value))
  }
  // After the convergence step every set is exact (but for the holders a stopped revoke left
  // in its revoking set: those are not in the value's set).
  const after = await invariants("none")
  expect(
    after.violations.map((v) => v.message),
    `${label}: converged`
  ).toEqual([])
  const [field, value] = scenario.pairs[0]!
  const holders = await holdersOf(store, ids, field, value)
  const others = ids.filter((id) => !holders.includes(id))
  const othersBefore = await Promise.all(others.map((id) => cluster.exists(store.getSessionKey(id))))
  expect(await run(store.deleteByReference(field, value)), `${label}: deleteByReference count`).toBe(holders.length)
  for (const id of holders) expect(await cluster.exists(store.getSessionKey(id))).toBe(0)
  expect(await Promise.all(others.map((id) => cluster.exists(store.getSessionKey(id))))).toEqual(othersBefore)
}

describe("SessionStore on a cluster, interrupted", () => {
  for (const scenario of scenarios) {
    it(`${scenario.name}: stopped after any step, readers neither return a dead session nor miss a live one`, async () => {
      let completed = false
      for (let budget = 0; !completed; budget++) {
        expect(budget, "the operation finishes within 60 commands").toBeLessThan(60)
        const prefix = uniquePrefix(`crash-${budget}`)
        const store = await storeOver(cluster, prefix)
        const ids = await Promise.all(Array.from({ length: 4 }, () => run(store.createSessionId)))
        await run(scenario.setup({ store, ids }))
        const crashing = await storeOver(crashingClient(cluster, budget), prefix)
        const exit = await Effect.runPromiseExit(scenario.op(crashing, ids))
        if (Exit.isSuccess(exit)) completed = true
        else expect(JSON.stringify(exit.cause)).toContain("RedisError")
        await checkAfterInterruption(`${scenario.name}, stopped after ${budget} commands`, store, scenario, ids)
        await cleanUp(prefix)
      }
    })
  }
})

// ---- Racing writers, interleaved by hand ----
//
// A client whose `at`-th command waits until `release` is called (the others pass).
// `reached` resolves when that command is issued, so another writer can run in between.
const loadScripts = async () => {
  const scripts = [
    clusterAddReference,
    clusterDeleteSession,
    clusterReadState,
    clusterWriteSession,
    clusterRegenerateSnapshot,
    clusterFreezeReference,
    clusterKeepRevoking,
    clusterRevokeSession
  ]
  await Promise.all(cluster.nodes("master").flatMap((node) => scripts.map((script) => node.script("LOAD", script.source))))
}

const gatedClient = (client: Cluster, at: number, budget = Number.POSITIVE_INFINITY) => {
  let calls = 0
  let release!: () => void
  let onReached!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const reached = new Promise<void>((resolve) => (onReached = resolve))
  const proxy = new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== "function") return value
      if (isNotACommand(property)) return ignoredEvents(property, receiver, target)
      return (...args: Array<unknown>) => {
        calls += 1
        if (calls > budget) return Promise.reject(new Error("simulated crash"))
        const invoke = () => (value as (...a: Array<unknown>) => unknown).apply(target, args)
        if (calls !== at) return invoke()
        onReached()
        return gate.then(invoke)
      }
    }
  })
  return { client: proxy, reached, release }
}

describe("SessionStore on a cluster, racing writers", () => {
  // The steps are counted in commands: have every script cached on every master, so that
  // no EVALSHA turns into EVALSHA + EVAL (NOSCRIPT) and shifts the count.
  beforeAll(async () => {
    await loadScripts()
  })

  it("a reference added late, after a newer write moved the session away, is taken back", async () => {
    const prefix = uniquePrefix("cluster-late-add")
    const store = await storeOver(cluster, prefix)
    const id = await run(store.createSessionId)
    // set(id, {team: a}) on a new session: 1 pre-add a, 2 write, 3 re-assert a ← held here.
    const gated = gatedClient(cluster, 3)
    const slow = await storeOver(gated.client, prefix)
    const first = Effect.runPromise(slow.set(id, { team: "a" }))
    await gated.reached
    await run(store.set(id, { team: "b" }))
    expect(await cluster.sismember(store.getReferenceKey("team", "a"), id)).toBe(0)
    gated.release()
    await first
    // The late SADD of a was followed by a read of the hash (team = b), and undone.
    expect(await cluster.sismember(store.getReferenceKey("team", "a"), id)).toBe(0)
    expect(await cluster.smembers(store.getReferenceKey("team", "b"))).toEqual([id])
    expect(await run(store.get(id))).toEqual({ id, team: "b" })
    await cleanUp(prefix)
  })

  it("a write whose kept reference changed under it retries, so even a crash right after its hash write leaves the sets outliving the hash", async () => {
    for (const budget of [3, Number.POSITIVE_INFINITY]) {
      const prefix = uniquePrefix("cluster-cas")
      const store = await storeOver(cluster, prefix)
      const id = await run(store.createSessionId)
      await run(store.set(id, { team: "a" }, 60_000))
      // touch(id, 1 h): 1 write (expects no team, finds a: nothing written), 2 pre-add a ← held
      // while team becomes b (60 s), 3 write.
      const gated = gatedClient(cluster, 2, budget)
      const slow = await storeOver(gated.client, prefix)
      const touch = Effect.runPromiseExit(slow.touch(id, HOUR))
      await gated.reached
      await run(store.set(id, { team: "b" }, 60_000))
      gated.release()
      const exit = await touch
      expect(Exit.isSuccess(exit)).toBe(budget === Number.POSITIVE_INFINITY)
      // The write step compared team with what its sets were prepared for (a), found b, and
      // wrote nothing; had it extended the hash to 1 h, team=b's set (60 s) would die first.
      const [hashExpiry, setExpiry] = await Promise.all([
        cluster.pexpiretime(store.getSessionKey(id)),
        cluster.pexpiretime(store.getReferenceKey("team", "b"))
      ])
      expect(await cluster.sismember(store.getReferenceKey("team", "b"), id)).toBe(1)
      expect(setExpiry).toBeGreaterThanOrEqual(hashExpiry)
      if (Exit.isSuccess(exit)) {
        expect(exit.value).toBe(true)
        expect(hashExpiry - Date.now()).toBeGreaterThan(HOUR - 60_000)
        expect(await cluster.sismember(store.getReferenceKey("team", "a"), id)).toBe(0)
      }
      await cleanUp(prefix)
    }
  })
})

// ---- Revoke-all against operations in flight, interleaved by hand ----
//
// deleteByReference: 1 freeze (the set moves to its revoking set, t0), 2 keep-alive, 3 SSCAN,
// then one script per member (on its slot) and the reconcile of each deleted one, then the
// last keep-alive (the revoking set lives exactly the grace period).
describe("SessionStore on a cluster, revoke-all racing operations in flight", () => {
  beforeAll(async () => {
    await loadScripts()
  })

  /** The ids among `ids` whose session is alive. */
  const aliveOf = async (store: SessionStoreService, ids: ReadonlyArray<string | undefined>) => {
    const alive: Array<string> = []
    for (const id of ids) if (id !== undefined && (await cluster.exists(store.getSessionKey(id))) === 1) alive.push(id)
    return alive
  }

  const victims = async (store: SessionStoreService, n: number, user: string) => {
    const ids = await Promise.all(Array.from({ length: n }, () => run(store.createSessionId)))
    await Promise.all(ids.map((id) => run(store.set(id, { user_id: user }))))
    return ids
  }

  it("regenerate held after its snapshot: its pre-add finds the old id being revoked, and no new id is made", async () => {
    const prefix = uniquePrefix("revoke-regen-snapshot")
    const store = await storeOver(cluster, prefix)
    const others = await victims(store, 20, "1")
    const [x, y] = [await run(store.createSessionId), await run(store.createSessionId)]
    await run(store.set(x, { user_id: "1", name: "x" }))
    // regenerate(x → y): 1 snapshot, 2 pre-add y to user_id=1 ← held, 3 create y, 4 delete x.
    const gated = gatedClient(cluster, 2)
    const slow = await storeOver(gated.client, prefix)
    const regenerated = Effect.runPromise(slow.regenerate(x, y))
    await gated.reached
    expect(await run(store.deleteByReference("user_id", "1"))).toBe(21)
    gated.release()
    expect(await regenerated).toBeUndefined()
    expect(await aliveOf(store, [x, y, ...others])).toEqual([])
    expect(await cluster.sismember(store.getReferenceKey("user_id", "1"), y)).toBe(0)
    expect(await run(store.listByReference("user_id", "1"))).toEqual([])
    await cleanUp(prefix)
  })

  it("regenerate held after its pre-add: the new id is in the frozen set, its create meets a tombstone", async () => {
    const prefix = uniquePrefix("revoke-regen-preadd")
    const store = await storeOver(cluster, prefix)
    const others = await victims(store, 20, "1")
    const [x, y] = [await run(store.createSessionId), await run(store.createSessionId)]
    await run(store.set(x, { user_id: "1", team: "t" }))
    // regenerate(x → y): 1 snapshot, 2–3 pre-add y (user_id=1, team=t), 4 create y ← held.
    const gated = gatedClient(cluster, 4)
    const slow = await storeOver(gated.client, prefix)
    const regenerated = Effect.runPromise(slow.regenerate(x, y))
    await gated.reached
    expect(await cluster.sismember(store.getReferenceKey("user_id", "1"), y)).toBe(1)
    expect(await run(store.deleteByReference("user_id", "1"))).toBe(21)
    expect(await cluster.exists(`${store.getSessionKey(y)}:revoked`)).toBe(1)
    gated.release()
    expect(await regenerated).toBeUndefined()
    expect(await aliveOf(store, [x, y, ...others])).toEqual([])
    // What it pre-added is taken back.
    expect(await cluster.sismember(store.getReferenceKey("team", "t"), y)).toBe(0)
    await cleanUp(prefix)
  })

  it("regenerate held after its create: the revoke deletes the new id as well as the old", async () => {
    const prefix = uniquePrefix("revoke-regen-created")
    const store = await storeOver(cluster, prefix)
    const [x, y] = [await run(store.createSessionId), await run(store.createSessionId)]
    await run(store.set(x, { user_id: "1" }))
    // regenerate(x → y): 1 snapshot, 2 pre-add, 3 create y, 4 delete x ← held.
    const gated = gatedClient(cluster, 4)
    const slow = await storeOver(gated.client, prefix)
    const regenerated = Effect.runPromise(slow.regenerate(x, y))
    await gated.reached
    expect(await run(store.deleteByReference("user_id", "1"))).toBe(2)
    gated.release()
    await regenerated
    expect(await aliveOf(store, [x, y])).toEqual([])
    await cleanUp(prefix)
  })

  for (const onlyExisting of [false, true]) {
    it(`a ${onlyExisting ? "setExisting" : "set"} moving the value away, held before its hash write: it cannot bring the revoked session back`, async () => {
      const prefix = uniquePrefix("revoke-move-before")
      const store = await storeOver(cluster, prefix)
      const x = await run(store.createSessionId)
      await run(store.set(x, { user_id: "1", name: "x" }))
      // set(x, user_id=2): 1 pre-add user_id=2, 2 hash write ← held.
      const gated = gatedClient(cluster, 2)
      const slow = await storeOver(gated.client, prefix)
      const write = Effect.runPromiseExit(onlyExisting ? slow.setExisting(x, { user_id: "2" }) : slow.set(x, { user_id: "2" }))
      await gated.reached
      expect(await run(store.deleteByReference("user_id", "1"))).toBe(1)
      gated.release()
      const exit = await write
      if (onlyExisting) expect(exit).toEqual(Exit.succeed(false))
      else expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("InvalidSessionId")
      expect(await aliveOf(store, [x])).toEqual([])
      expect(await cluster.smembers(store.getReferenceKey("user_id", "2"))).toEqual([])
      await cleanUp(prefix)
    })
  }

  it("a session that moved the value away after the freeze (before its reconcile) is revoked by its left record", async () => {
    const prefix = uniquePrefix("revoke-move-after")
    const store = await storeOver(cluster, prefix)
    const x = await run(store.createSessionId)
    await run(store.set(x, { user_id: "1", name: "x" }))
    // The revoke: 1 freeze, 2 keep-alive, 3 SSCAN ← held (the set is frozen, nobody reached yet).
    const gated = gatedClient(cluster, 3)
    const slow = await storeOver(gated.client, prefix)
    const revoke = Effect.runPromise(slow.deleteByReference("user_id", "1"))
    await gated.reached
    await run(store.set(x, { user_id: "2" }))
    expect(await cluster.hkeys(`${store.getSessionKey(x)}:left`)).toEqual(["user_id:1"])
    gated.release()
    expect(await revoke).toBe(1)
    expect(await aliveOf(store, [x])).toEqual([])
    expect(await cluster.exists(`${store.getSessionKey(x)}:left`)).toBe(0)
    expect(await cluster.smembers(store.getReferenceKey("user_id", "2"))).toEqual([])
    await cleanUp(prefix)
  })

  it("a session that moved the value away after the freeze, then regenerates, gets no new id", async () => {
    const prefix = uniquePrefix("revoke-move-regen")
    const store = await storeOver(cluster, prefix)
    const x = await run(store.createSessionId)
    await run(store.set(x, { user_id: "1" }))
    const gated = gatedClient(cluster, 3)
    const slow = await storeOver(gated.client, prefix)
    const revoke = Effect.runPromise(slow.deleteByReference("user_id", "1"))
    await gated.reached
    await run(store.set(x, { user_id: "2" }))
    // x holds 2 now, but left 1 after the freeze, with x in 1's revoking set.
    expect(await run(store.regenerate(x))).toBeUndefined()
    expect(await cluster.smembers(store.getReferenceKey("user_id", "2"))).toEqual([x])
    gated.release()
    expect(await revoke).toBe(1)
    expect(await aliveOf(store, [x])).toEqual([])
    // Nothing of x but its tombstone, and no other session.
    const left = (await keysMatching(cluster, `${prefix}:*`)).filter((key) => key.startsWith(`${prefix}:{`))
    expect(left).toEqual([`${store.getSessionKey(x)}:revoked`])
    await cleanUp(prefix)
  })

  it("a fresh login during the revoke is not affected, and a session that left the value long before is kept", async () => {
    const prefix = uniquePrefix("revoke-fresh")
    const store = await storeOver(cluster, prefix)
    const others = await victims(store, 20, "1")
    const gated = gatedClient(cluster, 3)
    const slow = await storeOver(gated.client, prefix)
    const revoke = Effect.runPromise(slow.deleteByReference("user_id", "1"))
    await gated.reached
    // The Koa login: an anonymous session gets a new id, then the user.
    const anonymous = await run(store.createSessionId)
    await run(store.set(anonymous, { name: "anon" }))
    const fresh = (await run(store.regenerate(anonymous)))!
    expect(fresh).toBeDefined()
    await run(store.set(fresh, { user_id: "1" }))
    gated.release()
    expect(await revoke).toBe(20)
    expect(await aliveOf(store, [fresh, ...others])).toEqual([fresh])
    expect(await run(store.listByReference("user_id", "1"))).toEqual([fresh])
    // It changes and moves to new ids freely.
    expect(await run(store.touch(fresh))).toBe(true)
    const again = await run(store.regenerate(fresh))
    expect(again).toBeDefined()
    expect(await run(store.get(again!))).toEqual({ id: again, name: "anon", user_id: "1" })
    await cleanUp(prefix)
  })

  it("a member that had moved away before the revoke leaves the revoking set: signing in to the value again is an ordinary session", async () => {
    const prefix = uniquePrefix("revoke-kept")
    const store = await storeOver(cluster, prefix)
    // A stale member: its hash expired holding the value, then was written again without it.
    const kept = await run(store.createSessionId)
    await run(store.set(kept, { user_id: "1" }))
    await cluster.del(store.getSessionKey(kept))
    await run(store.set(kept, { name: "anon" }))
    const holder = (await victims(store, 1, "1"))[0]!
    const revoking = `${store.getReferenceKey("user_id", "1")}:revoking`
    expect(await run(store.deleteByReference("user_id", "1"))).toBe(1)
    expect(await aliveOf(store, [kept, holder])).toEqual([kept])
    expect(await cluster.smembers(revoking)).toEqual([holder])
    // Within the grace period it signs in to the value again, and moves to a new id freely.
    await run(store.set(kept, { user_id: "1" }))
    const again = (await run(store.regenerate(kept)))!
    expect(await run(store.get(again))).toEqual({ id: again, name: "anon", user_id: "1" })
    expect(await run(store.listByReference("user_id", "1"))).toEqual([again])
    await cleanUp(prefix)
  })

  it("two revokes of one value at once, and again within the grace period: every holder deleted once, the revoking set kept exactly the grace period", async () => {
    const prefix = uniquePrefix("revoke-twice")
    const store = await storeOver(cluster, prefix)
    const first = await victims(store, 300, "1")
    const [a, b] = await Promise.all([run(store.deleteByReference("user_id", "1")), run(store.deleteByReference("user_id", "1"))])
    expect(a + b).toBe(300)
    expect(await aliveOf(store, first)).toEqual([])
    const revoking = `${store.getReferenceKey("user_id", "1")}:revoking`
    const second = await victims(store, 10, "1")
    expect(await run(store.deleteByReference("user_id", "1"))).toBe(10)
    expect(await aliveOf(store, second)).toEqual([])
    expect(await cluster.scard(revoking)).toBe(310)
    const ttl = await cluster.pttl(revoking)
    expect(ttl).toBeGreaterThan(55_000)
    expect(ttl).toBeLessThanOrEqual(60_000)
    await cleanUp(prefix)
  })
})

describe("SessionStore on a cluster, via the layer", () => {
  it.effect("SessionStore.layer over RedisClient.layer({ cluster }) is the cluster store", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const id = yield* store.createSessionId
      yield* store.set(id, { user_id: 3 })
      expect(yield* store.listByReference("user_id", 3)).toEqual([id])
      expect(yield* store.delete(id)).toBe(true)
      expect(yield* store.listByReference("user_id", 3)).toEqual([])
    }).pipe(
      Effect.provide(
        SessionStore.layer({ prefix: uniquePrefix("cluster-layer"), references: REFS }).pipe(
          Layer.provide(Layer.suspend(() => RedisClient.layer({ cluster: { nodes: redisClusterNodes() } })))
        )
      )
    )
  )
})

// ---- timeout bounds the whole operation ----

/** A client whose every command is answered `delayMillis` late (the commands themselves run as sent). */
const slowClient = (client: Cluster, delayMillis: number): Cluster =>
  new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== "function") return value
      if (isNotACommand(property)) return ignoredEvents(property, receiver, target)
      return (...args: Array<unknown>) =>
        new Promise((resolve) => setTimeout(resolve, delayMillis)).then(() =>
          (value as (...a: Array<unknown>) => unknown).apply(target, args)
        )
    }
  })

describe("SessionStore on a cluster, timeout", () => {
  const TIMEOUT = 600
  const slowStore = (prefix: string) =>
    run(
      SessionStore.make({ prefix, references: REFS }).pipe(
        Effect.provide(RedisClient.layerFromClient(slowClient(cluster, TIMEOUT * 0.4), { timeout: TIMEOUT }))
      )
    )

  it("bounds a whole write (several round trips, each well within it), not each round trip", async () => {
    const prefix = uniquePrefix("cluster-timeout")
    const store = await slowStore(prefix)
    const id = await run(store.createSessionId)
    const started = performance.now()
    const exit = await Effect.runPromiseExit(store.set(id, { team: "a", org: "o" }))
    const elapsed = performance.now() - started
    // Each round trip takes 0.4 × timeout, and this write is four of them (test/cluster.roundtrips.test.ts).
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    expect(error).toMatchObject({ _tag: "RedisError", operation: "SessionStore.set" })
    expect((error as RedisError).cause).toBeInstanceOf(RedisTimeoutError)
    expect(elapsed).toBeLessThan(TIMEOUT * 1.6)
    // A one-round-trip read within the timeout still succeeds through the same client.
    expect(await run(store.get(id))).toBeDefined()
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT))
    await cleanUp(prefix)
  })
})

// ---- Account controls (issue 13) on a cluster: lifetimes, rolling reads, caps, the list ----
//
// Short limits (hundreds of ms) and real waiting: Redis expires keys on its own clock.

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

const controlledStore = (prefix: string, options: SessionStoreOptions) =>
  run(SessionStore.make({ prefix, references: REFS, ...options }).pipe(Effect.provide(RedisClient.layerFromClient(cluster))))

/** Runs one of the store's actions (the operations a Session uses: read, with a client…). */
const act = <A, E>(store: SessionStoreService, f: (actions: StoreActions) => Action<A, E>): Promise<A> => {
  const backend = backendOf(store)
  return run(toEffect(backend.redis, f(backend.actions)) as Effect.Effect<A, never>)
}

/** Calls of `command` on every master since the last call of the returned function (INFO commandstats). */
const counter = async (command: string) => {
  const total = async () => {
    let calls = 0
    for (const node of cluster.nodes("master")) calls += (await commandStats(node))[command] ?? 0
    return calls
  }
  let last = await total()
  return async () => {
    const now = await total()
    const delta = now - last
    last = now
    return delta
  }
}

const createdAtOf = async (store: SessionStoreService, id: string) => Number(await cluster.hget(store.getSessionKey(id), "_created_at"))

describe("SessionStore on a cluster, account controls", () => {
  it("an active session dies at creation + absoluteMaxAge: touch and set near the deadline do not extend it", async () => {
    const prefix = uniquePrefix("cluster-absolute")
    const store = await controlledStore(prefix, { maxAge: 400, absoluteMaxAge: 700 })
    const id = await run(store.createSessionId)
    await run(store.set(id, { user_id: "u", team: "t" }))
    const created = await createdAtOf(store, id)
    expect(await run(store.lifetime(id))).toEqual({
      createdAt: created,
      expiresAt: await cluster.pexpiretime(store.getSessionKey(id)),
      absoluteExpiresAt: created + 700
    })
    // Active every 100 ms: each touch or write gives min(now + maxAge, the deadline).
    let nearDeadline = 0
    for (let i = 0; Date.now() < created + 600; i++) {
      await sleep(100)
      if (i % 2 === 0) expect(await run(store.touch(id))).toBe(true)
      else await run(store.set(id, { seen: i }))
      const at = await cluster.pexpiretime(store.getSessionKey(id))
      expect(at).toBeLessThanOrEqual(created + 700)
      if (Date.now() > created + 350) {
        expect(at).toBe(created + 700)
        nearDeadline++
      }
      // The sets still outlive the hash.
      for (const [field, value] of [
        ["user_id", "u"],
        ["team", "t"]
      ] as const) {
        expect(await cluster.pexpiretime(store.getReferenceKey(field, value))).toBeGreaterThanOrEqual(at)
      }
    }
    expect(nearDeadline).toBeGreaterThan(0)
    await sleep(created + 750 - Date.now())
    expect(await run(store.get(id))).toEqual({})
    expect(await run(store.lifetime(id))).toBeUndefined()
    expect(await run(store.touch(id))).toBe(false)
    expect(await run(store.setExisting(id, { a: 1 }))).toBe(false)
    expect(await run(store.listByReference("user_id", "u"))).toEqual([])
    expect(await run(store.listByReference("team", "t"))).toEqual([])
    await cleanUp(prefix)
  })

  it("regenerate keeps the creation time, and an explicit maxAge is capped at the deadline", async () => {
    const prefix = uniquePrefix("cluster-absolute-regen")
    const store = await controlledStore(prefix, { maxAge: 400, absoluteMaxAge: 800 })
    const id = await run(store.createSessionId)
    await run(store.set(id, { user_id: "u" }))
    const created = await createdAtOf(store, id)
    await sleep(150)
    const next = (await run(store.regenerate(id, undefined, 60_000)))!
    expect(await createdAtOf(store, next)).toBe(created)
    expect(Number(await cluster.hget(store.getSessionKey(next), "_last_seen_at"))).toBeGreaterThanOrEqual(created + 150)
    expect(await cluster.pexpiretime(store.getSessionKey(next))).toBe(created + 800)
    expect(await run(store.lifetime(next))).toMatchObject({ createdAt: created, absoluteExpiresAt: created + 800 })
    expect(await cluster.pexpiretime(store.getReferenceKey("user_id", "u"))).toBeGreaterThanOrEqual(created + 800)
    await cleanUp(prefix)
  })

  it("a session past a shortened absoluteMaxAge is dead to every operation, and each one that finds it deletes it with its references", async () => {
    const prefix = uniquePrefix("cluster-absolute-shortened")
    const before = await controlledStore(prefix, { maxAge: 60_000, absoluteMaxAge: 120_000 })
    const ids = await Promise.all(Array.from({ length: 5 }, () => run(before.createSessionId)))
    // The last one moved from team t0 to t before: its left record says so.
    await run(before.set(ids[4]!, { team: "t0" }))
    for (const id of ids) await run(before.set(id, { user_id: "u", team: "t", name: "old" }))
    await sleep(350)
    const after = await controlledStore(prefix, { maxAge: 300, absoluteMaxAge: 300, rolling: true })
    const [getting, writing, regenerating, reading, setting] = ids
    expect(await run(after.get(getting!))).toEqual({})
    expect(await run(after.lifetime(getting!))).toBeUndefined()
    expect(await run(after.setExisting(writing!, { a: 1 }))).toBe(false)
    expect(await run(after.regenerate(regenerating!))).toBeUndefined()
    // (A read that is no rolling renewal: tracking observes reads too.)
    const tracking = await controlledStore(prefix, { maxAge: 300, absoluteMaxAge: 300, track: { ip: true } })
    expect(await act(tracking, (a) => a.read(reading!, undefined, { ip: "10.0.0.1" }))).toEqual({ session: {}, renewedTtl: undefined })
    // A set makes a fresh session under the id: new creation time, none of the old data.
    const oldCreated = await createdAtOf(after, setting!)
    await run(after.set(setting!, { name: "new" }))
    expect(await run(after.get(setting!, ["name", "user_id"]))).toEqual({ id: setting, name: "new" })
    expect(await createdAtOf(after, setting!)).toBeGreaterThanOrEqual(oldCreated + 350)
    for (const id of [writing, regenerating, reading, setting]) {
      expect(await cluster.exists(after.getSessionKey(id!))).toBe(id === setting ? 1 : 0)
    }
    // The fresh session records what the dead one held as left: a revoke of it that is
    // running still deletes the id.
    expect((await cluster.hkeys(`${after.getSessionKey(setting!)}:left`)).sort()).toEqual(["team:t", "team:t0", "user_id:u"])
    // Nobody is left in the sets but the one `get` never writes to (get is read-only)…
    expect(await cluster.smembers(after.getReferenceKey("user_id", "u"))).toEqual([getting])
    expect(await cluster.smembers(after.getReferenceKey("team", "t"))).toEqual([getting])
    // …which the device list does not show, and deletes.
    expect(Chunk.toArray(await run(Stream.runCollect(after.listSessions("user_id", "u"))))).toEqual([])
    expect(await cluster.exists(after.getSessionKey(getting!))).toBe(0)
    expect(await cluster.smembers(after.getReferenceKey("team", "t"))).toEqual([])
    await cleanUp(prefix)
  })

  it("a rolling read renews the lifetime at most once per rollingInterval, whatever the burst (the writes counted)", async () => {
    const prefix = uniquePrefix("cluster-rolling")
    const store = await controlledStore(prefix, { maxAge: 3_000, rolling: true, rollingInterval: 400 })
    const id = await run(store.createSessionId)
    await run(store.set(id, { user_id: "u", team: "t" }))
    const hsets = await counter("hset")
    const read = () => act(store, (a) => a.read(id, ["user_id"], undefined))
    // Within the interval of the write: reads only read.
    const quiet = await Promise.all(Array.from({ length: 10 }, read))
    expect(quiet.map((r) => r.renewedTtl)).toEqual(Array(10).fill(undefined))
    expect(quiet[0]!.session).toEqual({ id, user_id: "u" })
    expect(await hsets()).toBe(0)
    await sleep(450)
    const ttlBefore = await cluster.pttl(store.getSessionKey(id))
    expect(ttlBefore).toBeLessThan(2_600)
    // A burst once the interval passed: exactly one read renews (its update records
    // last-seen, then the renewal writes it again); the others only read.
    const burst = await Promise.all(Array.from({ length: 20 }, read))
    const renewed = burst.filter((r) => r.renewedTtl !== undefined)
    expect(renewed).toHaveLength(1)
    expect(renewed[0]!.renewedTtl).toBeGreaterThan(2_900)
    expect(await hsets()).toBe(2)
    expect(await cluster.pttl(store.getSessionKey(id))).toBeGreaterThan(2_800)
    const hashAt = await cluster.pexpiretime(store.getSessionKey(id))
    for (const [field, value] of [
      ["user_id", "u"],
      ["team", "t"]
    ] as const) {
      expect(await cluster.pexpiretime(store.getReferenceKey(field, value))).toBeGreaterThanOrEqual(hashAt)
    }
    const again = await Promise.all(Array.from({ length: 10 }, read))
    expect(again.every((r) => r.renewedTtl === undefined)).toBe(true)
    expect(await hsets()).toBe(0)
    // Never shortened: a session written with a longer lifetime keeps it.
    await run(store.set(id, { name: "n" }, 60_000))
    await sleep(450)
    const long = await read()
    expect(long.renewedTtl).toBeGreaterThan(59_000)
    expect(await cluster.pttl(store.getSessionKey(id))).toBeGreaterThan(59_000)
    await cleanUp(prefix)
  })

  it("sequential logins: the cap evicts exactly the least recently active session, with all its references, and says so", async () => {
    const prefix = uniquePrefix("cluster-cap")
    const evictions: Array<unknown> = []
    const store = await controlledStore(prefix, {
      references: { user_id: { maxSessions: 3 }, team: {} },
      onEvict: (eviction) => evictions.push(eviction)
    })
    const ids = await Promise.all(Array.from({ length: 5 }, () => run(store.createSessionId)))
    const login = async (i: number) => {
      await sleep(5)
      await run(store.set(ids[i]!, { user_id: "u", team: `t${i}` }))
    }
    for (const i of [0, 1, 2]) await login(i)
    expect(evictions).toEqual([])
    // Session 0 is active again: session 1 is now the least recently active.
    await sleep(5)
    await run(store.set(ids[0]!, { seen: 1 }))
    await login(3)
    expect(evictions).toEqual([{ field: "user_id", value: "u", evicted: 1 }])
    await login(4)
    expect(evictions).toHaveLength(2)
    const live = [ids[0], ids[3], ids[4]].sort()
    expect((await cluster.smembers(store.getReferenceKey("user_id", "u"))).sort()).toEqual(live)
    expect((await run(store.listByReference("user_id", "u"))).sort()).toEqual(live)
    for (const i of [1, 2]) {
      expect(await cluster.exists(store.getSessionKey(ids[i]!))).toBe(0)
      expect(await cluster.exists(store.getReferenceKey("team", `t${i}`))).toBe(0)
    }
    // A write that does not join the value (it already holds it) evicts nothing.
    await run(store.set(ids[3]!, { user_id: "u", name: "again" }))
    expect(evictions).toHaveLength(2)
    const report = await checkInvariants({ client: cluster, prefix, references: REFS, staleMembers: "none" })
    expect(report.violations.map((v) => v.message)).toEqual([])
    expect(report.found.sessions.sort()).toEqual(live)
    await cleanUp(prefix)
  })

  it("concurrent first logins of one capped value: at quiescence exactly maxSessions live, the most recently active, and each eviction announced once", async () => {
    const prefix = uniquePrefix("cluster-cap-race")
    let evicted = 0
    const store = await controlledStore(prefix, {
      references: { user_id: { maxSessions: 3 }, team: {} },
      onEvict: (eviction) => (evicted += eviction.evicted)
    })
    const older = await Promise.all(Array.from({ length: 2 }, () => run(store.createSessionId)))
    for (const id of older) await run(store.set(id, { user_id: "r" }))
    await sleep(5)
    const ids = await Promise.all(Array.from({ length: 12 }, () => run(store.createSessionId)))
    await run(
      Effect.all(
        ids.map((id, i) => store.set(id, { user_id: "r", team: `t${i % 3}` })),
        { concurrency: "unbounded", discard: true }
      )
    )
    const all = [...older, ...ids]
    const exists = await Promise.all(all.map((id) => cluster.exists(store.getSessionKey(id))))
    const survivors = all.filter((_, i) => exists[i] === 1)
    expect(survivors).toHaveLength(3)
    // The older sessions were the least recently active of all.
    expect(survivors.some((id) => older.includes(id))).toBe(false)
    expect(evicted).toBe(11)
    expect((await cluster.smembers(store.getReferenceKey("user_id", "r"))).sort()).toEqual([...survivors].sort())
    const report = await checkInvariants({ client: cluster, prefix, references: REFS, staleMembers: "none" })
    expect(report.violations.map((v) => v.message)).toEqual([])
    expect(report.found.sessions.sort()).toEqual([...survivors].sort())
    await cleanUp(prefix)
  })

  it("deleteByReference with except revokes every other session of the value and keeps exactly that one, references and all", async () => {
    const prefix = uniquePrefix("cluster-except")
    const store = await controlledStore(prefix, { track: { userAgent: true } })
    const ids = await Promise.all(Array.from({ length: 6 }, () => run(store.createSessionId)))
    for (const [i, id] of ids.entries()) await run(store.set(id, { user_id: "e", team: `t${i % 2}`, name: `n${i}` }))
    const kept = ids[2]!
    const keptBefore = await run(store.get(kept))
    expect(await run(store.deleteByReference("user_id", "e", { except: kept }))).toBe(5)
    expect(await run(store.get(kept))).toEqual(keptBefore)
    for (const id of ids) expect(await cluster.exists(store.getSessionKey(id))).toBe(id === kept ? 1 : 0)
    expect(await cluster.smembers(store.getReferenceKey("user_id", "e"))).toEqual([kept])
    expect(await cluster.sismember(`${store.getReferenceKey("user_id", "e")}:revoking`, kept)).toBe(0)
    expect(await cluster.pexpiretime(store.getReferenceKey("user_id", "e"))).toBeGreaterThanOrEqual(
      await cluster.pexpiretime(store.getSessionKey(kept))
    )
    expect(await run(store.listByReference("user_id", "e"))).toEqual([kept])
    // It is not being revoked: it still changes and moves to a new id.
    const moved = (await run(store.regenerate(kept)))!
    expect(moved).toBeDefined()
    expect(await run(store.listByReference("user_id", "e"))).toEqual([moved])
    // deleteHolding deletes only a session holding the value.
    expect(await act(store, (a) => a.deleteHolding(moved, "user_id", "other"))).toBe(false)
    expect(await act(store, (a) => a.deleteHolding(moved, "user_id", "e"))).toBe(true)
    expect(await cluster.smembers(store.getReferenceKey("user_id", "e"))).toEqual([])
    expect(await cluster.smembers(store.getReferenceKey("team", "t0"))).toEqual([])
    await cleanUp(prefix)
  })

  it(`listSessions pages through more than ${SCAN_BATCH} members with their times and devices, and prunes the dead ones`, async () => {
    const prefix = uniquePrefix("cluster-list")
    const store = await controlledStore(prefix, { maxAge: 60_000, absoluteMaxAge: 120_000, track: { userAgent: true, ip: true } })
    const ids = await Promise.all(Array.from({ length: 1_200 }, () => run(store.createSessionId)))
    for (let from = 0; from < ids.length; from += 100) {
      await Promise.all(
        ids
          .slice(from, from + 100)
          .map((id, j) =>
            act(store, (a) => a.set(id, { user_id: "L" }, undefined, { userAgent: `agent ${from + j}`, ip: `10.0.${(from + j) % 256}.1` }))
          )
      )
    }
    // 30 expire (the hash goes, the memberships stay), 10 move to another value.
    const expired = ids.slice(0, 30)
    const movedAway = ids.slice(30, 40)
    await deleteKeys(
      cluster,
      expired.map((id) => store.getSessionKey(id))
    )
    for (const id of movedAway) await run(store.set(id, { user_id: "M" }))
    await Promise.all(movedAway.map((id) => cluster.sadd(store.getReferenceKey("user_id", "L"), id)))
    const first = await act(store, (a) => a.listSessionsPage("user_id", "L", "0"))
    expect(first.cursor).not.toBe("0")
    const listed = Chunk.toArray(await run(Stream.runCollect(store.listSessions("user_id", "L"))))
    const live = ids.slice(40)
    expect(new Set(listed.map((s) => s.id))).toEqual(new Set(live))
    const one = listed.find((s) => s.id === live[0])!
    const created = await createdAtOf(store, live[0]!)
    expect(one).toEqual({
      id: live[0],
      createdAt: created,
      lastSeenAt: created,
      expiresAt: await cluster.pexpiretime(store.getSessionKey(live[0]!)),
      absoluteExpiresAt: created + 120_000,
      userAgent: "agent 40",
      ip: "10.0.40.1"
    })
    expect(await cluster.scard(store.getReferenceKey("user_id", "L"))).toBe(live.length)
    await cleanUp(prefix)
  })
})
