/**
 * The `SessionStore` service: sessions as Redis hashes, plus one Redis SET per
 * referenced field value holding the ids of the sessions with that value.
 *
 * One contract, three backends: a Redis server, a Redis Cluster (chosen from the
 * `RedisClient`), and an in-process store for development and tests (`layerMemory`).
 *
 * @since 4.0.0
 */
import { Config, Context, Effect, Layer } from "effect"
import type { ConfigError } from "effect"
import { RedisClient } from "./RedisClient.js"
import type { RedisClientService } from "./RedisClient.js"
import { SessionConfigError } from "./SessionError.js"
import { makeClusterActions } from "./internal/store/cluster/cluster.js"
import { makeMemoryStore } from "./internal/store/memory.js"
import type { ResolvedOptions } from "./internal/store/plan.js"
import { makeRules, resolveOptions } from "./internal/store/plan.js"
import { makeService } from "./internal/store/service.js"
import { makeStandaloneActions } from "./internal/store/standalone.js"
import type { SessionStoreOptions, SessionStoreService } from "./internal/store/types.js"

export type {
  DeleteByReferenceOptions,
  Limits,
  MaxAgeInput,
  ReferenceOptions,
  RegenerateOptions,
  SessionData,
  SessionEviction,
  SessionInfo,
  SessionLifetime,
  SessionStoreError,
  SessionStoreOptions,
  SessionStoreService,
  SessionValue,
  TrackOptions
} from "./internal/store/types.js"

const resolved = (options: SessionStoreOptions): Effect.Effect<ResolvedOptions, SessionConfigError> =>
  Effect.suspend(() => {
    const result = resolveOptions(options)
    return result instanceof SessionConfigError ? Effect.fail(result) : Effect.succeed(result)
  })

/**
 * Builds the store over the `RedisClient` in context: on a Redis Cluster when the
 * client is one, else on a single server.
 *
 * @since 4.0.0
 * @category constructors
 */
export const make = (options: SessionStoreOptions = {}): Effect.Effect<SessionStoreService, SessionConfigError, RedisClient> =>
  Effect.flatMap(RedisClient, (redis) => Effect.map(resolved(options), (checked) => makeWith(redis, checked)))

/**
 * Builds an in-process store with the same contract: string values, the `id` field,
 * an exact reference index, lifetimes read from Effect's `Clock` (so `TestClock.adjust`
 * expires sessions), `regenerate`, and revoke-all that cannot be escaped (each
 * operation is one synchronous step). Expired sessions are removed, not only hidden, so
 * memory stays bounded by the live sessions. For development and tests: its data lives
 * in this process only, and each `makeMemory` (each layer build) starts empty.
 *
 * @since 4.0.0
 * @category constructors
 */
export const makeMemory = (options: SessionStoreOptions = {}): Effect.Effect<SessionStoreService, SessionConfigError> =>
  Effect.map(resolved(options), (checked) => makeMemoryStore(makeRules(checked)))

/** Builds the store from options already resolved (the Koa factory resolves them before it connects). */
export const makeWith = (redis: RedisClientService, options: ResolvedOptions): SessionStoreService => {
  const rules = makeRules(options)
  const actions = redis.isCluster ? makeClusterActions(rules, redis) : makeStandaloneActions(rules, redis)
  return makeService(rules, { actions, redis })
}

/**
 * The session store, over the `RedisClient` in context.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { RedisClient, SessionStore } from "koa-redis-session-sets"
 *
 * // A backend job: sign user 42 out everywhere.
 * const revoke = Effect.gen(function* () {
 *   const store = yield* SessionStore
 *   return yield* store.deleteByReference("user_id", 42)
 * })
 *
 * const StoreLive = SessionStore.layer({ references: ["user_id"] }).pipe(
 *   Layer.provide(RedisClient.layer("redis://127.0.0.1:6379"))
 * )
 * Effect.runPromise(revoke.pipe(Effect.provide(StoreLive)))
 * ```
 *
 * @since 4.0.0
 * @category tags
 */
export class SessionStore extends Context.Tag("koa-redis-session-sets/SessionStore")<SessionStore, SessionStoreService>() {
  /** Builds the store over the `RedisClient` in context. */
  static readonly make = make
  /** A layer of the store; needs a `RedisClient` layer (a single server or a Cluster). */
  static readonly layer = (options: SessionStoreOptions = {}): Layer.Layer<SessionStore, SessionConfigError, RedisClient> =>
    Layer.effect(SessionStore, make(options))
  /** Builds an in-process store (see {@link makeMemory}). */
  static readonly makeMemory = makeMemory
  /** A layer of an in-process store (see {@link makeMemory}); needs no Redis. */
  static readonly layerMemory = (options: SessionStoreOptions = {}): Layer.Layer<SessionStore, SessionConfigError> =>
    Layer.effect(SessionStore, makeMemory(options))
  /**
   * {@link SessionStore.layer} with its options read from `Config`, as `@effect/sql-pg`'s
   * `layerConfig` does: each option may be a `Config` (`{ prefix: Config.string("SESSION_PREFIX") }`).
   */
  static readonly layerConfig = (
    options: Config.Config.Wrap<SessionStoreOptions>
  ): Layer.Layer<SessionStore, SessionConfigError | ConfigError.ConfigError, RedisClient> =>
    Layer.effect(SessionStore, Effect.flatMap(Config.unwrap(options), make))
}
