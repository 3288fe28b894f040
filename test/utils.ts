import { randomBytes } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { Redis } from "ioredis"
import { inject } from "vitest"
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

/** Count of calls per Redis command, from INFO commandstats. */
export const commandStats = (client: Redis) =>
  Effect.promise(async () => {
    const info = await client.info("commandstats")
    const stats: Record<string, number> = {}
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[match[1]!] = Number(match[2])
    return stats
  })

/** Runs one command on the raw client: `yield* raw((c) => c.smembers(key))`. */
export const raw = <A>(f: (client: Redis) => Promise<A>) => Effect.flatMap(Raw, (client) => Effect.promise(() => f(client)))

/** Waits in real time, whatever clock the test runs with (Redis TTLs run on the real one). */
export const realSleep = (millis: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))
