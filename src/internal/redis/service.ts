// The `RedisClientService` over one ioredis client (the interface is re-exported from
// RedisClient.ts): every call bounded by the timeout through the client's shared deadline
// list, and failed at once while the client is known to be down (connection.ts).
import { Effect } from "effect"
import { Cluster } from "ioredis"
import type { Redis } from "ioredis"
import * as LuaScript from "../../LuaScript.js"
import { RedisError, RedisTimeoutError } from "../../SessionError.js"
import { connectionOf } from "./connection.js"

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

/** The service over `client`, its calls bounded by `timeoutMillis`. */
export const makeService = (client: Redis | Cluster, timeoutMillis: number): RedisClientService => {
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
