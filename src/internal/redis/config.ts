// Connection data and behaviour options of `RedisClient` (re-exported from RedisClient.ts),
// and what the layer builds from them: the per-operation timeouts and the ioredis
// constructor call. Secrets are unwrapped here, once, where the ioredis options are built.
import { Duration, Effect, Redacted } from "effect"
import { Cluster, Redis } from "ioredis"
import type { ClusterNode, ClusterOptions, RedisOptions } from "ioredis"
import { SessionConfigError } from "../../SessionError.js"
import type { DurationInput } from "../duration.js"
import { checkTimeoutOption } from "../options.js"

/**
 * Connection data for {@link RedisClient.layer}. Secrets are `Redacted` and are
 * unwrapped once, where the ioredis options are built.
 *
 * @since 4.0.0
 * @category models
 */
export interface RedisClientConfig {
  /** `redis://[user:password@]host:port[/db]`. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly username?: string | undefined
  readonly password?: string | Redacted.Redacted<string> | undefined
  readonly db?: number | undefined
  /** Any other ioredis option. `replyMapping` stays at ioredis' `"legacy"` default; connecting is managed by the layer. */
  readonly options?: Omit<RedisOptions, "replyMapping" | "lazyConnect"> | undefined
  /**
   * Longest a store operation may wait for Redis before failing with `RedisError`: milliseconds,
   * a string such as `"2s"` or `"2 seconds"`, or a `Duration`; at most Node's timer limit
   * (about 24.8 days). Default 2 seconds.
   */
  readonly timeout?: DurationInput | undefined
  /** Longest the layer waits for the first connection, as `timeout`. Default 5 seconds. */
  readonly connectTimeout?: DurationInput | undefined
  /**
   * Connect to a Redis Cluster instead: start-up nodes plus ioredis `ClusterOptions`.
   * `username`/`password` apply to every node; `url`, `host`, `port`, `db` and
   * `options` must then be left out (node connection options go in `cluster.options.redisOptions`).
   */
  readonly cluster?: RedisClusterConfig | undefined
}

/**
 * Start-up nodes of a Redis Cluster, for {@link RedisClientConfig.cluster}. ioredis
 * discovers the rest of the cluster from any one of them.
 *
 * @since 4.0.0
 * @category models
 */
export interface RedisClusterConfig {
  /** `"host:port"`, a port on localhost, or `{ host, port }`. At least one. */
  readonly nodes: ReadonlyArray<ClusterNode>
  /** Any other ioredis cluster option. `replyMapping` stays at `"legacy"`; connecting is managed by the layer. */
  readonly options?:
    | (Omit<ClusterOptions, "lazyConnect" | "redisOptions"> & {
        readonly redisOptions?: Omit<NonNullable<ClusterOptions["redisOptions"]>, "replyMapping" | "lazyConnect"> | undefined
      })
    | undefined
}

/**
 * Behaviour of a client the application owns, for {@link RedisClient.layerFromClient}.
 *
 * @since 4.0.0
 * @category models
 */
export interface RedisClientOptions {
  /** Longest a store operation may wait for Redis before failing with `RedisError`, as {@link RedisClientConfig.timeout}. Default 2 seconds. */
  readonly timeout?: DurationInput | undefined
}

export const DEFAULT_TIMEOUT = Duration.seconds(2)
export const DEFAULT_CONNECT_TIMEOUT = Duration.seconds(5)

/**
 * A timeout option in whole milliseconds, by the one duration grammar (internal/duration.ts)
 * with the factory's range and messages, or the `SessionConfigError` naming it.
 */
export const millisOf = (input: DurationInput | undefined, option: string, fallback: Duration.Duration = DEFAULT_TIMEOUT): number | SessionConfigError =>
  checkTimeoutOption(option, input ?? fallback)

/** {@link millisOf} in the error channel. */
export const timeoutMillisOf = (
  input: DurationInput | undefined,
  option: string,
  fallback: Duration.Duration = DEFAULT_TIMEOUT
): Effect.Effect<number, SessionConfigError> => {
  const millis = millisOf(input, option, fallback)
  return typeof millis === "number" ? Effect.succeed(millis) : Effect.fail(millis)
}

type IoredisOptions = Omit<RedisOptions, "replyMapping">

const toIoredisOptions = (config: RedisClientConfig): IoredisOptions => {
  const options: IoredisOptions = { ...config.options, lazyConnect: true }
  if (config.host !== undefined) options.host = config.host
  if (config.port !== undefined) options.port = config.port
  if (config.username !== undefined) options.username = config.username
  if (config.password !== undefined) {
    options.password = Redacted.isRedacted(config.password) ? Redacted.value(config.password) : config.password
  }
  if (config.db !== undefined) options.db = config.db
  return options
}

type IoredisClusterOptions = Omit<ClusterOptions, "redisOptions"> & {
  redisOptions?: Omit<NonNullable<ClusterOptions["redisOptions"]>, "replyMapping">
}

/** The `Cluster` constructor's arguments, or why the config cannot describe a cluster. */
const toClusterArguments = (
  config: RedisClientConfig,
  cluster: RedisClusterConfig
): readonly [Array<ClusterNode>, IoredisClusterOptions] | SessionConfigError => {
  for (const option of ["url", "host", "port", "db", "options"] as const) {
    if (config[option] !== undefined) {
      return new SessionConfigError({ option, reason: "does not apply with cluster (list start-up nodes in cluster.nodes)" })
    }
  }
  if (!Array.isArray(cluster.nodes) || cluster.nodes.length === 0) {
    return new SessionConfigError({ option: "cluster.nodes", reason: "must list at least one start-up node" })
  }
  const redisOptions: NonNullable<IoredisClusterOptions["redisOptions"]> = { ...cluster.options?.redisOptions }
  if (config.username !== undefined) redisOptions.username = config.username
  if (config.password !== undefined) {
    redisOptions.password = Redacted.isRedacted(config.password) ? Redacted.value(config.password) : config.password
  }
  return [[...cluster.nodes], { ...cluster.options, lazyConnect: true, redisOptions }]
}

/**
 * What creates the ioredis client the config describes (lazily connecting: the layer
 * connects it), or why the config cannot describe one. Nothing is created until it is called.
 */
export const clientConstructor = (config: RedisClientConfig): (() => Redis | Cluster) | SessionConfigError => {
  if (config.cluster !== undefined) {
    const clusterArguments = toClusterArguments(config, config.cluster)
    if (clusterArguments instanceof SessionConfigError) return clusterArguments
    return () => new Cluster(clusterArguments[0], clusterArguments[1])
  }
  const options = toIoredisOptions(config)
  const url = config.url === undefined ? undefined : Redacted.isRedacted(config.url) ? Redacted.value(config.url) : config.url
  return () => (url === undefined ? new Redis(options) : new Redis(url, options))
}
