/**
 * The `RedisClient` service: an ioredis `Redis` or `Cluster` behind a typed,
 * time-bounded `use`.
 *
 * @since 4.0.0
 */
import { Context, Duration, Effect, Layer, Redacted, Runtime, Scope } from "effect"
import { Cluster, Redis, ReplyError } from "ioredis"
import type { ClusterNode, ClusterOptions, RedisOptions } from "ioredis"
import { Deadlines } from "./internal/deadlines.js"
import type { DurationInput } from "./internal/duration.js"
import { checkTimeoutOption } from "./internal/options.js"
import * as LuaScript from "./LuaScript.js"
import { RedisError, RedisTimeoutError, SessionConfigError } from "./SessionError.js"

// Moved to SessionError.ts (the error family); still exported here for its importers.
export { RedisTimeoutError } from "./SessionError.js"

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

/**
 * What the store needs of Redis.
 *
 * @since 4.0.0
 * @category models
 */
export interface RedisClientService {
  /** The underlying ioredis client, for commands this library has no wrapper for. */
  readonly client: Redis | Cluster
  /** Whether `client` is an ioredis `Cluster`. */
  readonly isCluster: boolean
  /** The per-operation timeout, in milliseconds. */
  readonly timeoutMillis: number
  /**
   * Runs one ioredis call. A rejection, or no answer within the timeout, fails
   * with `RedisError` carrying `operation` and the cause. While the client is known to
   * be unable to connect (a connection attempt failed, or the connection died with a
   * socket error, and it has not connected since), calls fail at once with the
   * connection error as the cause instead of waiting in ioredis' offline queue, and
   * calls already waiting fail when that is seen. Once the client connects, calls are
   * served again.
   */
  readonly use: <A>(operation: string, f: (client: Redis | Cluster) => Promise<A>) => Effect.Effect<A, RedisError>
  /**
   * `use` without a fiber, for the Promise facade's hot path: the promise rejects
   * with `RedisError` on a failure or after the timeout, and at once while the client
   * is known to be down, as `use` does.
   */
  readonly unsafeSend: <A>(operation: string, f: (client: Redis | Cluster) => Promise<A>) => Promise<A>
  /**
   * `unsafeSend` with callbacks instead of a promise (one promise and one hop less per
   * call): exactly one of `onReply` and `onFailure` runs, once.
   */
  readonly unsafeCall: <A>(
    operation: string,
    f: (client: Redis | Cluster) => Promise<A>,
    onReply: (reply: A) => void,
    onFailure: (error: RedisError) => void,
    /**
     * For a later call of a multi-call operation: the `performance.now()` by which the
     * whole operation must be done. The call gets only the time left (none: it fails at
     * once with `RedisTimeoutError`), so `timeout` bounds the operation, not each call.
     */
    deadline?: number
  ) => void
  /** Runs a Lua script by EVALSHA (EVAL once on NOSCRIPT), bounded by the timeout. */
  readonly runScript: (
    operation: string,
    script: LuaScript.LuaScript,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>
  ) => Effect.Effect<unknown, RedisError>
}

const DEFAULT_TIMEOUT = Duration.seconds(2)
const DEFAULT_CONNECT_TIMEOUT = Duration.seconds(5)
const QUIT_TIMEOUT = Duration.seconds(2)

// The one duration grammar (internal/duration.ts), with the factory's range and messages.
const millisOf = (input: DurationInput | undefined, fallback: Duration.Duration, option: string): number | SessionConfigError =>
  checkTimeoutOption(option, input ?? fallback)

const timeoutMillisOf = (
  input: DurationInput | undefined,
  option: string,
  fallback: Duration.Duration = DEFAULT_TIMEOUT
): Effect.Effect<number, SessionConfigError> => {
  const millis = millisOf(input, fallback, option)
  return typeof millis === "number" ? Effect.succeed(millis) : Effect.fail(millis)
}

// A promise raced against its own timer: for the one-off connect, whose timeout differs
// from the operations'. `known()` is what the client's events said went wrong, if
// anything: it is the better cause (ioredis' connect() only rejects with "Connection is
// closed." when the connection was refused).
const timedPromise = <A>(operation: string, millis: number, evaluate: () => Promise<A>, known: () => unknown): Effect.Effect<A, RedisError> =>
  Effect.async<A, RedisError>((resume) => {
    const timer = setTimeout(
      () => resume(Effect.fail(new RedisError({ operation, cause: known() ?? new RedisTimeoutError(millis) }))),
      millis
    )
    timer.unref()
    let promise: Promise<A>
    try {
      promise = evaluate()
    } catch (cause) {
      clearTimeout(timer)
      return resume(Effect.fail(new RedisError({ operation, cause })))
    }
    promise.then(
      (value) => {
        clearTimeout(timer)
        resume(Effect.succeed(value))
      },
      (cause: unknown) => {
        clearTimeout(timer)
        resume(Effect.fail(new RedisError({ operation, cause: known() ?? cause })))
      }
    )
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * What one ioredis client's events say about its connection, shared by every service
 * over that client (one set of listeners per client, however many services or Koa
 * factories use it).
 *
 * The client is known to be down from the moment a connection attempt fails (or an open
 * connection dies with a socket error) until it connects again. A fresh client's first
 * connect, and the re-dial after an open connection closed cleanly (a restart, an idle
 * timeout, CLIENT KILL), are not failures: calls made meanwhile wait in ioredis' offline
 * queue as before, and fail at once if that attempt fails.
 */
class ConnectionState {
  /** The connection error while the client is known to be down, else `undefined`. */
  cause: unknown = undefined
  // One list per timeout in use on this client: all its in-flight calls, failed at once
  // when the connection is seen to go down.
  private readonly lists = new Map<number, Deadlines>()

  constructor(private readonly client: Redis | Cluster) {
    client.on("error", this.onError)
    // "connect": the socket is up (a Cluster: the slot map loaded); what fails after that
    // is reported anew. "ready": serving.
    client.on("connect", this.onUp)
    client.on("ready", this.onUp)
  }

  deadlines(millis: number): Deadlines {
    let deadlines = this.lists.get(millis)
    if (deadlines === undefined) {
      deadlines = new Deadlines(millis, () => new RedisTimeoutError(millis))
      this.lists.set(millis, deadlines)
    }
    return deadlines
  }

  private readonly onError = (error: unknown): void => {
    // Our listener must not silence ioredis for a client whose owner attached none: print
    // what ioredis prints when nobody listens.
    if (this.client.listenerCount("error") === 1) {
      console.error("[ioredis] Unhandled error event:", error instanceof Error ? error.stack : error)
    }
    // While serving, only a socket error means the connection is gone (others are about
    // one command or subscription).
    if (this.client.status === "ready" && !isSocketError(error)) return
    this.cause = error
    for (const deadlines of this.lists.values()) deadlines.failAll(error)
  }

  private readonly onUp = (): void => {
    this.cause = undefined
  }
}

const isSocketError = (error: unknown): boolean =>
  error instanceof Error && typeof (error as { code?: unknown }).code === "string" && typeof (error as { syscall?: unknown }).syscall === "string"

const connections = new WeakMap<Redis | Cluster, ConnectionState>()

const connectionOf = (client: Redis | Cluster): ConnectionState => {
  let state = connections.get(client)
  if (state === undefined) {
    state = new ConnectionState(client)
    connections.set(client, state)
  }
  return state
}

// ---- maxmemory-policy: read once per client, at its first "ready" ----

const EVICTION_WARNING =
  "Redis may evict this library's reference sets (they carry a TTL, so volatile-* policies evict them too) while their " +
  "sessions live on, and revoke-all (deleteByReference) then misses those sessions. Set maxmemory-policy noeviction; " +
  'see the README section "Redis configuration" (https://github.com/koajs/redis-session-sets#redis-configuration).'

type PolicyReading =
  | { readonly node: string; readonly policy: string }
  | { readonly node: string; readonly refused: string }
  | { readonly node: string; readonly failed: true }

const evictionWatched = new WeakSet<Redis | Cluster>()

const nodeName = (node: Redis): string => {
  const options = node.options as { readonly host?: unknown; readonly port?: unknown; readonly path?: unknown }
  if (typeof options.path === "string" && options.path !== "") return options.path
  return `${typeof options.host === "string" ? options.host : "localhost"}:${typeof options.port === "number" ? options.port : 6379}`
}

// `CONFIG GET` answers a flat array under the "legacy" reply mapping, a map otherwise.
const policyOf = (reply: unknown): string | undefined => {
  let value: unknown
  if (Array.isArray(reply)) value = reply[reply.findIndex((item) => String(item) === "maxmemory-policy") + 1]
  else if (reply instanceof Map) value = reply.get("maxmemory-policy")
  else if (typeof reply === "object" && reply !== null) value = (reply as Record<string, unknown>)["maxmemory-policy"]
  if (value instanceof Uint8Array) value = Buffer.from(value).toString()
  return typeof value === "string" && /^[\w-]{1,64}$/.test(value) ? value : undefined
}

const readPolicy = (node: Redis): Promise<PolicyReading> => {
  const name = nodeName(node)
  return node.config("GET", "maxmemory-policy").then(
    (reply): PolicyReading => {
      const policy = policyOf(reply)
      return policy === undefined ? { node: name, refused: "no maxmemory-policy in the reply" } : { node: name, policy }
    },
    // Redis answered with an error: CONFIG renamed or disabled, or denied by an ACL.
    (error: unknown): PolicyReading =>
      error instanceof ReplyError ? { node: name, refused: new RedisError({ operation: "CONFIG GET", cause: error }).message } : { node: name, failed: true }
  )
}

/**
 * Reads `maxmemory-policy` once per client, when the client is (or next becomes) ready,
 * and logs one warning on `runtime` unless it is `noeviction`. On a Cluster every master
 * known then is read, and one warning names those that evict. Never fails and never
 * delays a call: `CONFIG` renamed, disabled or denied is a debug log, no warning; a
 * connection failure before the answer tries again at the next "ready".
 */
const watchEvictionPolicy = (client: Redis | Cluster, runtime: Runtime.Runtime<never>): void => {
  if (evictionWatched.has(client)) return
  evictionWatched.add(client)
  const log = (effect: Effect.Effect<void>) => void Runtime.runFork(runtime)(effect)
  const check = (): void => {
    client.off("ready", check)
    let readings: Promise<Array<PolicyReading>>
    try {
      readings = Promise.all((client instanceof Cluster ? client.nodes("master") : [client]).map(readPolicy))
    } catch {
      return
    }
    void readings.then((readings) => {
      const evicting = readings.flatMap((r) => ("policy" in r && r.policy !== "noeviction" ? [r] : []))
      if (evicting.length > 0) {
        const policies = [...new Set(evicting.map((r) => r.policy))].join(", ")
        log(
          Effect.logWarning(`Redis maxmemory-policy is ${policies}, not noeviction: ${EVICTION_WARNING}`).pipe(
            Effect.annotateLogs({
              "redis.maxmemory_policy": policies,
              "redis.nodes": evicting.map((r) => `${r.node} ${r.policy}`).join(", ")
            })
          )
        )
        return
      }
      const read = readings.flatMap((r) => ("policy" in r ? [r] : []))
      if (read.length > 0) {
        log(
          Effect.logDebug("Redis maxmemory-policy is noeviction").pipe(
            Effect.annotateLogs({ "redis.maxmemory_policy": "noeviction", "redis.nodes": read.map((r) => r.node).join(", ") })
          )
        )
      }
      const refused = readings.flatMap((r) => ("refused" in r ? [r] : []))
      if (refused.length > 0) {
        log(
          Effect.logDebug("Redis maxmemory-policy not checked: CONFIG GET was refused").pipe(
            Effect.annotateLogs({ "redis.nodes": refused.map((r) => r.node).join(", "), reason: refused[0]!.refused })
          )
        )
      }
      // Nothing read at all (the connection went away first): at the next "ready".
      if (readings.every((r) => "failed" in r)) client.on("ready", check)
    })
  }
  if (client.status === "ready") check()
  else client.on("ready", check)
}

const makeService = (client: Redis | Cluster, timeoutMillis: number): RedisClientService => {
  const connection = connectionOf(client)
  const deadlines = connection.deadlines(timeoutMillis)
  const timedOut = (operation: string) => new RedisError({ operation, cause: new RedisTimeoutError(timeoutMillis) })
  // A call with less than the whole timeout left: its own timer (the shared deadline list
  // keeps calls that all have the same timeout, in order).
  const callWithin = <A>(
    operation: string,
    f: (client: Redis | Cluster) => Promise<A>,
    onReply: (reply: A) => void,
    onFailure: (error: RedisError) => void,
    left: number
  ): void => {
    if (left <= 0) {
      setImmediate(onFailure, timedOut(operation))
      return
    }
    let settled = false
    const settle = (): boolean => {
      if (settled) return false
      settled = true
      clearTimeout(timer)
      return true
    }
    const timer = setTimeout(() => settle() && onFailure(timedOut(operation)), Math.ceil(left))
    let promise
    try {
      promise = f(client)
    } catch (cause) {
      if (settle()) onFailure(new RedisError({ operation, cause }))
      return
    }
    promise.then(
      (reply) => settle() && onReply(reply),
      (cause: unknown) => settle() && onFailure(new RedisError({ operation, cause }))
    )
  }
  const unsafeCall: RedisClientService["unsafeCall"] = (operation, f, onReply, onFailure, deadline) => {
    // Known to be down: fail now, rather than queue the call until the timeout. (The
    // status read covers the tick between ioredis' "ready" and its event.)
    // Failed on the next turn of the event loop, not synchronously: a caller retrying in a
    // loop must still let ioredis reconnect.
    const down = connection.cause
    if (down !== undefined && client.status !== "ready") {
      setImmediate(onFailure, new RedisError({ operation, cause: down }))
      return
    }
    if (deadline !== undefined) {
      const left = deadline - performance.now()
      if (left < timeoutMillis) return callWithin(operation, f, onReply, onFailure, left)
    }
    const pending = deadlines.start((cause) => onFailure(new RedisError({ operation, cause })))
    let promise
    try {
      promise = f(client)
    } catch (cause) {
      if (deadlines.settle(pending)) onFailure(new RedisError({ operation, cause }))
      return
    }
    promise.then(
      (reply) => {
        if (deadlines.settle(pending)) onReply(reply)
      },
      (cause: unknown) => {
        if (deadlines.settle(pending)) onFailure(new RedisError({ operation, cause }))
      }
    )
  }
  // No canceler on purpose: with one, Effect wraps every call in an interrupt handler
  // (measured: 30 → 22 µs CPU per store get). An interrupted call's reply is ignored.
  const use: RedisClientService["use"] = (operation, f) =>
    Effect.async((resume) =>
      unsafeCall(
        operation,
        f,
        (reply) => resume(Effect.succeed(reply)),
        (error) => resume(Effect.fail(error))
      )
    )
  return {
    client,
    isCluster: client instanceof Cluster,
    timeoutMillis,
    use,
    unsafeCall,
    unsafeSend: (operation, f) => new Promise((resolve, reject) => unsafeCall(operation, f, resolve, reject)),
    runScript: (operation, script, keys, args) => use(operation, (client) => LuaScript.evaluate(client, script, keys, args))
  }
}

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
    const millis = millisOf(options.timeout, DEFAULT_TIMEOUT, "timeout")
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

const makeScoped = Effect.fnUntraced(function* (config: RedisClientConfig) {
  const timeoutMillis = yield* timeoutMillisOf(config.timeout, "timeout")
  const connectMillis = yield* timeoutMillisOf(config.connectTimeout, "connectTimeout", DEFAULT_CONNECT_TIMEOUT)
  const runtime = yield* Effect.runtime<never>()
  const clusterArguments = config.cluster === undefined ? undefined : toClusterArguments(config, config.cluster)
  if (clusterArguments instanceof SessionConfigError) return yield* clusterArguments
  const options = toIoredisOptions(config)
  const url = config.url === undefined ? undefined : Redacted.isRedacted(config.url) ? Redacted.value(config.url) : config.url

  const client = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const created: Redis | Cluster =
        clusterArguments !== undefined
          ? new Cluster(clusterArguments[0], clusterArguments[1])
          : url === undefined
            ? new Redis(options)
            : new Redis(url, options)
      // Without a listener ioredis prints "Unhandled error event" for every failed reconnect.
      created.on("error", (error: Error) => {
        // The message as RedisError puts it (ioredis' own can quote a reply).
        const reason = new RedisError({ operation: "connection", cause: error }).message.replace(/^Redis connection failed: /, "")
        Runtime.runFork(runtime)(Effect.logWarning("Redis connection error").pipe(Effect.annotateLogs({ error: reason })))
      })
      // Tracked from the first event on, so a refused first connect is known.
      connectionOf(created)
      return created
    }),
    (client) => quit(client)
  )

  // A Cluster's connect() resolves once it is "ready": slots fetched, ready check passed.
  const connection = connectionOf(client)
  yield* timedPromise("connect", connectMillis, () => client.connect(), () => connection.cause).pipe(
    Effect.tapError(() => Effect.sync(() => disconnect(client)))
  )
  watchEvictionPolicy(client, runtime)
  return makeService(client, timeoutMillis)
})

/** Quits a client and waits (bounded) until its connection has ended; disconnects as the fallback. */
export const quit = (client: Redis | Cluster): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (client.status === "end") return resume(Effect.void)
    // Nothing left to close, and "end" would never come (costing the whole QUIT_TIMEOUT,
    // e.g. on every layer whose connect was refused): a Redis client between re-dials has
    // no socket (disconnect() only cancels the next attempt); a Cluster disconnected with
    // no node connected stays "disconnecting".
    if (client instanceof Cluster ? client.status === "disconnecting" && client.nodes("all").length === 0 : client.status === "reconnecting") {
      disconnect(client)
      return resume(Effect.void)
    }
    const ended = () => resume(Effect.void)
    client.once("end", ended)
    client.quit().catch(() => disconnect(client))
    return Effect.sync(() => client.off("end", ended))
  }).pipe(
    // Interruptible even inside a finalizer (layers quit there): otherwise the timeout
    // would wait for an "end" that never comes, e.g. from a Cluster whose connect failed.
    Effect.interruptible,
    Effect.timeoutOption(QUIT_TIMEOUT),
    Effect.ensuring(Effect.sync(() => disconnect(client)))
  )

// A Cluster's disconnect() moves even an ended client back to "disconnecting", where it
// then stays: disconnect only what has not ended.
const disconnect = (client: Redis | Cluster): void => {
  if (client.status !== "end") client.disconnect()
}
