// The lifecycle of a client the layer owns: created from the config, connected (bounded by
// `connectTimeout`), quit when the scope closes.
import { Duration, Effect, Runtime } from "effect"
import { Cluster } from "ioredis"
import type { Redis } from "ioredis"
import { RedisError, RedisTimeoutError, SessionConfigError } from "../../SessionError.js"
import { clientConstructor, DEFAULT_CONNECT_TIMEOUT, timeoutMillisOf } from "./config.js"
import type { RedisClientConfig } from "./config.js"
import { connectionOf } from "./connection.js"
import { watchEvictionPolicy } from "./eviction.js"
import { makeService } from "./service.js"

const QUIT_TIMEOUT = Duration.seconds(2)

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
 * Creates the client the config describes in the current scope, waits (bounded) until it
 * is connected, and quits it when the scope closes.
 */
export const makeScoped = Effect.fnUntraced(function* (config: RedisClientConfig) {
  const timeoutMillis = yield* timeoutMillisOf(config.timeout, "timeout")
  const connectMillis = yield* timeoutMillisOf(config.connectTimeout, "connectTimeout", DEFAULT_CONNECT_TIMEOUT)
  const runtime = yield* Effect.runtime<never>()
  const construct = clientConstructor(config)
  if (construct instanceof SessionConfigError) return yield* construct

  const client = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const created = construct()
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
