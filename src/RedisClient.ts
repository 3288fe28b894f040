/**
 * The `RedisClient` service: an ioredis `Redis` or `Cluster` behind a typed,
 * time-bounded `use`.
 *
 * @since 4.0.0
 */
import { Config, Context, Effect, Layer, Runtime } from "effect"
import type { ConfigError, Scope } from "effect"
import type { Cluster, Redis } from "ioredis"
import { millisOf, timeoutMillisOf } from "./internal/redis/config.js"
import type { RedisClientConfig, RedisClientOptions } from "./internal/redis/config.js"
import { watchEvictionPolicy } from "./internal/redis/eviction.js"
import { makeScoped } from "./internal/redis/lifecycle.js"
import { makeService } from "./internal/redis/service.js"
import type { RedisClientService } from "./internal/redis/service.js"
import type { RedisError, SessionConfigError } from "./SessionError.js"

// The models live with the code that reads them (internal/redis/); this is their public home.
export type { RedisClientConfig, RedisClientOptions, RedisClusterConfig } from "./internal/redis/config.js"
export type { RedisClientService } from "./internal/redis/service.js"
// Moved to SessionError.ts (the error family); still exported here for its importers.
export { RedisTimeoutError } from "./SessionError.js"
// quit: what the layers run on release, for clients the Koa factory owns too.
export { quit } from "./internal/redis/lifecycle.js"

/**
 * The Redis connection the session store runs on.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient } from "koa-redis-session-sets"
 *
 * const ping = Effect.gen(function* () {
 *   const redis = yield* RedisClient
 *   return yield* redis.use("PING", (client) => client.ping())
 * }).pipe(Effect.provide(RedisClient.layer("redis://127.0.0.1:6379")))
 * ```
 *
 * @since 4.0.0
 * @category tags
 */
export class RedisClient extends Context.Tag("koa-redis-session-sets/RedisClient")<RedisClient, RedisClientService>() {
  /**
   * Connects a new ioredis client in the current scope (waiting, bounded, for the
   * connection) and quits it when the scope closes. With `cluster`, the client is an
   * ioredis `Cluster`, ready (slot map loaded, `cluster_state:ok`) before this succeeds.
   *
   * @example
   * ```ts
   * RedisClient.layer({ cluster: { nodes: ["10.0.0.1:6379", "10.0.0.2:6379"] }, password: Redacted.make("…") })
   * ```
   *
   * Once connected, it reads `maxmemory-policy` (`CONFIG GET`, every master of a
   * Cluster) in the background and logs one warning, on the runtime that built it,
   * unless the policy is `noeviction` (see README "Redis configuration"). `CONFIG`
   * renamed, disabled or denied only gives a debug log.
   */
  static readonly make = (config: string | RedisClientConfig): Effect.Effect<RedisClientService, RedisError | SessionConfigError, Scope.Scope> =>
    makeScoped(typeof config === "string" ? { url: config } : config)

  /** A layer that owns its connection: created on build, quit on release. */
  static readonly layer = (config: string | RedisClientConfig): Layer.Layer<RedisClient, RedisError | SessionConfigError> =>
    Layer.scoped(RedisClient, RedisClient.make(config))

  /**
   * {@link RedisClient.layer} with its config read from Effect's `Config` (so from the
   * environment, or whatever `ConfigProvider` is in place): any field may be a `Config`,
   * or the whole config one. A config that cannot be read (a missing variable) fails the
   * layer with `ConfigError`. Read `url` and `password` with `Config.redacted`: they
   * stay `Redacted` until the ioredis options are built, and no error shows them.
   *
   * @example
   * ```ts
   * import { Config, Layer } from "effect"
   * import { RedisClient, SessionStore } from "koa-redis-session-sets"
   *
   * const RedisLive = RedisClient.layerConfig({
   *   url: Config.redacted("REDIS_URL"),
   *   timeout: Config.string("REDIS_TIMEOUT").pipe(Config.withDefault("2 seconds"))
   * })
   * const StoreLive = SessionStore.layer({ references: ["user_id"] }).pipe(Layer.provide(RedisLive))
   * ```
   *
   * @since 4.0.0
   * @category layers
   */
  static readonly layerConfig = (
    config: Config.Config.Wrap<RedisClientConfig>
  ): Layer.Layer<RedisClient, ConfigError.ConfigError | RedisError | SessionConfigError> =>
    Layer.scoped(RedisClient, Effect.flatMap(Config.unwrap(config), RedisClient.make))

  /**
   * The service over a client the caller owns, built synchronously (throws
   * `SessionConfigError` for a bad timeout). The client is never quit.
   *
   * To know when the client is down, this adds `error`, `connect` and `ready`
   * listeners to it (once per client, however many services share it; they stay for
   * the client's life). If the `error` listener is the client's only one, it prints
   * what ioredis prints for an unhandled error event, so the owner's logging is as
   * before.
   *
   * Like `make`, it checks `maxmemory-policy` once per client (when the client is or
   * becomes ready) and warns unless it is `noeviction`; with no runtime at hand, the
   * warning goes through Effect's default logger.
   */
  static readonly unsafeFromClient = (client: Redis | Cluster, options: RedisClientOptions = {}): RedisClientService =>
  {
    const millis = millisOf(options.timeout, "timeout")
    if (typeof millis !== "number") throw millis
    watchEvictionPolicy(client, Runtime.defaultRuntime)
    return makeService(client, millis)
  }

  /**
   * A layer over a client the caller owns (ioredis `Redis` or `Cluster`). It is never
   * quit by this library. Connection state is tracked with listeners, as for
   * {@link RedisClient.unsafeFromClient}. The `maxmemory-policy` warning (once per
   * client) is logged on the runtime that builds the layer first.
   */
  static readonly layerFromClient = (
    client: Redis | Cluster,
    options: RedisClientOptions = {}
  ): Layer.Layer<RedisClient, SessionConfigError> =>
    Layer.effect(
      RedisClient,
      Effect.gen(function* () {
        const millis = yield* timeoutMillisOf(options.timeout, "timeout")
        watchEvictionPolicy(client, yield* Effect.runtime<never>())
        return makeService(client, millis)
      })
    )
}
