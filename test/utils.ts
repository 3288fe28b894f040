import { randomBytes } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { Cluster, Redis } from "ioredis"
import { inject } from "vitest"
import type { ClusterNode } from "../scripts/redis-server.mjs"
import { RedisClient } from "../src/RedisClient.js"
import { SessionStore, type SessionStoreOptions } from "../src/SessionStore.js"

export const redisUrl = (): string => inject("redisUrl")

/** A prefix no other test uses, so tests never see each other's keys. */
export const uniquePrefix = (name: string): string => `t:${name}:${randomBytes(4).toString("hex")}`

/** A plain ioredis client for inspecting Redis directly, quit when the scope closes. */
export const rawClient = Effect.acquireRelease(
  Effect.sync(() => new Redis(redisUrl())),
  (client) => Effect.promise(() => client.quit().catch(() => "OK"))
)

export const RedisTest = Layer.suspend(() => RedisClient.layer(redisUrl()))

export const storeLayer = (options: SessionStoreOptions) => SessionStore.layer(options).pipe(Layer.provide(RedisTest))

/** All keys under a prefix (test-sized key spaces only). */
export const keysUnder = (client: Redis, prefix: string) => Effect.promise(() => client.keys(`${prefix}:*`))

/** A direct ioredis connection for looking at what the store wrote. */
export class Raw extends Context.Tag("test/Raw")<Raw, Redis>() {
  static readonly layer = Layer.scoped(Raw, rawClient)
}

/** SessionStore over a fresh RedisClient, plus a raw client. */
export const StoreTest = (options: SessionStoreOptions) => Layer.merge(storeLayer(options), Raw.layer)

/** Atomically reads the TTLs of several keys (ms; -1 = none, -2 = missing). */
export const pttls = (client: Redis, keys: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const multi = client.multi()
    for (const key of keys) multi.pttl(key)
    const replies = (await multi.exec()) ?? []
    return replies.map(([, ttl]) => ttl as number)
  })

/** Runs one command on the raw client: `yield* raw((c) => c.smembers(key))`. */
export const raw = <A>(f: (client: Redis) => Promise<A>) => Effect.flatMap(Raw, (client) => Effect.promise(() => f(client)))

/** Waits in real time, whatever clock the test runs with (Redis TTLs run on the real one). */
export const realSleep = (millis: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

// ---- Redis Cluster (a 3-master cluster started by globalSetup) ----

/** Start-up nodes of the test cluster. */
export const redisClusterNodes = (): Array<ClusterNode> => inject("redisClusterNodes")

/** A RedisClient over the test cluster (an ioredis `Cluster`, ready when built, quit on release). */
export const RedisClusterTest = Layer.suspend(() => RedisClient.layer({ cluster: { nodes: redisClusterNodes() } }))

export const clusterStoreLayer = (options: SessionStoreOptions) => SessionStore.layer(options).pipe(Layer.provide(RedisClusterTest))

/** A plain ioredis `Cluster` for inspecting the cluster directly, quit when the scope closes. */
export const rawClusterClient = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Cluster(redisClusterNodes())
    await new Promise<void>((resolve, reject) => {
      client.once("ready", resolve)
      client.once("error", reject)
    })
    return client
  }),
  (client) => Effect.promise(() => client.quit().catch(() => "OK"))
)

/** A direct connection to whichever Redis the suite runs on: a single server or the cluster. */
export class AnyRaw extends Context.Tag("test/AnyRaw")<AnyRaw, Redis | Cluster>() {
  static readonly standalone = Layer.scoped(AnyRaw, rawClient)
  static readonly cluster = Layer.scoped(AnyRaw, rawClusterClient)
}

/** Runs one command on the suite's raw client: `yield* rawAny((c) => c.smembers(key))`. */
export const rawAny = <A>(f: (client: Redis | Cluster) => Promise<A>) => Effect.flatMap(AnyRaw, (client) => Effect.promise(() => f(client)))

/** SessionStore over a fresh cluster RedisClient, plus a raw cluster client. */
export const ClusterStoreTest = (options: SessionStoreOptions) => Layer.merge(clusterStoreLayer(options), AnyRaw.cluster)

/** Every key matching `pattern`: KEYS on a single server, SCAN on every master of a cluster. */
export const keysMatching = async (client: Redis | Cluster, pattern: string): Promise<Array<string>> => {
  if (!(client instanceof Cluster)) return client.keys(pattern)
  const keys = new Set<string>()
  for (const node of client.nodes("master")) {
    let cursor = "0"
    do {
      const [next, batch] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      for (const key of batch) keys.add(key)
      cursor = next
    } while (cursor !== "0")
  }
  return [...keys]
}

/** All keys under a prefix, on a single server or a cluster (test-sized key spaces only). */
export const keysUnderAny = (client: Redis | Cluster, prefix: string) => Effect.promise(() => keysMatching(client, `${prefix}:*`))

/** Deletes keys one by one (a cluster refuses a multi-key DEL across slots). */
export const deleteKeys = async (client: Redis | Cluster, keys: ReadonlyArray<string>): Promise<void> => {
  await Promise.all(keys.map((key) => client.del(key)))
}

/** Absolute expiry of each key, unix ms (PEXPIRETIME: -1 = no TTL, -2 = missing). Comparable across cluster nodes on one host. */
export const expireTimes = (client: Redis | Cluster, keys: ReadonlyArray<string>) =>
  Effect.promise(() => Promise.all(keys.map((key) => client.pexpiretime(key))))

/**
 * Remaining TTLs (ms; -1 = none, -2 = missing) of several keys measured against one
 * instant, so they compare like an atomic read even when the keys are on different
 * nodes (all test nodes share this host's clock).
 */
export const ttlsAtOnce = (client: Redis | Cluster, keys: ReadonlyArray<string>) =>
  Effect.map(expireTimes(client, keys), (times) => {
    const now = Date.now()
    return times.map((at) => (at < 0 ? at : at - now))
  })
