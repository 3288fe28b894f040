// What a store holds, seen from outside its API, for the contract suite: for the Redis
// stores through a raw client (the hash, the reference sets), for the memory store through
// its read-only contents. One interface, so the same assertions run on all three.
import { Clock, Context, Effect, Layer, TestClock } from "effect"
import { memoryContents } from "../src/internal/store/memory.js"
import { SessionStore, type SessionStoreOptions } from "../src/SessionStore.js"
import { AnyRaw, ClusterStoreTest, realSleep, storeLayer, ttlsAtOnce } from "./utils.js"

export interface StorageService {
  /** Whether the store holds data for the session. */
  readonly hasSession: (id: string) => Effect.Effect<boolean>
  /** The ids the store's index holds for `field` = `value`, sorted. */
  readonly members: (field: string, value: string) => Effect.Effect<Array<string>>
  /** The session's remaining lifetime in ms (-2: no session). */
  readonly ttl: (id: string) => Effect.Effect<number>
  /** Ends one session's life now, as its lifetime running out would. */
  readonly expire: (id: string) => Effect.Effect<void>
  /** Whether an expired session may stay in its sets until a reader prunes it (Redis), or the index is exact (memory). */
  readonly keepsExpiredMembers: boolean
  /** Lets `millis` pass for the store: real time for Redis, the TestClock for memory. */
  readonly wait: (millis: number) => Effect.Effect<void>
  /** The store's clock, epoch ms (the machine's for Redis, which runs here; the TestClock for memory). */
  readonly now: Effect.Effect<number>
  /** How far apart two clock readings of one instant may be (the client's and Redis' `TIME`), in ms. */
  readonly slack: number
}

export class Storage extends Context.Tag("test/Storage")<Storage, StorageService>() {}

const redisStorage = Layer.effect(
  Storage,
  Effect.gen(function* () {
    const store = yield* SessionStore
    const client = yield* AnyRaw
    const call = <A>(f: () => Promise<A>) => Effect.promise(f)
    return {
      hasSession: (id) =>
        Effect.map(
          call(() => client.exists(store.getSessionKey(id))),
          (n) => n === 1
        ),
      members: (field, value) =>
        Effect.map(
          call(() => client.smembers(store.getReferenceKey(field, value))),
          (ids) => ids.sort()
        ),
      ttl: (id) => Effect.map(ttlsAtOnce(client, [store.getSessionKey(id)]), ([ttl]) => ttl!),
      // Expiry removes the hash and nothing else, exactly like this DEL.
      expire: (id) => Effect.asVoid(call(() => client.del(store.getSessionKey(id)))),
      keepsExpiredMembers: true,
      wait: realSleep,
      now: Effect.sync(() => Date.now()),
      slack: 25
    }
  })
)

const memoryStorage = Layer.effect(
  Storage,
  Effect.gen(function* () {
    const store = yield* SessionStore
    const contents = memoryContents(store)!
    const expiresAt = (id: string) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const at = contents.expiresAt(id)
        return at === undefined || at <= now ? undefined : at - now
      })
    return {
      hasSession: (id) => Effect.map(expiresAt(id), (left) => left !== undefined),
      // Sessions past their time leave the index at the start of the next operation (memory
      // stays bounded, test/SessionStore.memory.test.ts); until then no operation sees them.
      members: (field, value) =>
        Effect.map(Clock.currentTimeMillis, (now) =>
          contents
            .members(field, value)
            .filter((id) => (contents.expiresAt(id) ?? 0) > now)
            .sort()
        ),
      ttl: (id) => Effect.map(expiresAt(id), (left) => left ?? -2),
      // A lifetime of 1 ms, then the test's clock moves 1 ms.
      expire: (id) => Effect.zipRight(store.touch(id, 1), TestClock.adjust(1)).pipe(Effect.orDie),
      keepsExpiredMembers: false,
      wait: (millis) => TestClock.adjust(millis),
      now: Clock.currentTimeMillis,
      slack: 0
    }
  })
)

/** The three stores the contract runs on, each with its Storage view. */
export const BACKENDS: ReadonlyArray<readonly [string, (options: SessionStoreOptions) => Layer.Layer<SessionStore | Storage, unknown>]> = [
  ["single server", (options) => redisStorage.pipe(Layer.provideMerge(Layer.merge(storeLayer(options), AnyRaw.standalone)))],
  ["cluster", (options) => redisStorage.pipe(Layer.provideMerge(ClusterStoreTest(options)))],
  ["memory", (options) => memoryStorage.pipe(Layer.provideMerge(SessionStore.layerMemory(options)))]
]
