/**
 * The error family of koa-redis-session-sets.
 *
 * Every expected failure is a tagged error in the Effect error channel. The
 * Promise facade rejects with these same instances, so `instanceof` and `_tag`
 * work on both sides. `status`/`expose` follow the `http-errors` convention
 * that Koa reads when it turns a thrown error into a response.
 *
 * @since 4.0.0
 */
import { Data } from "effect"

/**
 * A Redis command failed, timed out, or the connection is down.
 * Koa answers 503 and never shows the cause to the client.
 *
 * When Redis refuses or cannot be reached, `cause` is the connection error ioredis
 * reported (a Node system error: `code` such as `"ECONNREFUSED"`, `address`, `port`),
 * and the message names it: `Redis SessionStore.get failed: cannot connect to
 * 127.0.0.1:6379 (ECONNREFUSED)`. Messages name addresses, never a URL or credentials.
 *
 * @since 4.0.0
 * @category errors
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  /** The store operation or Redis command that failed, e.g. `"SessionStore.set"`. */
  readonly operation: string
  /** What ioredis (or the timeout) rejected with, or the connection error while Redis is unreachable. */
  readonly cause: unknown
}> {
  /** HTTP status Koa uses for this error. */
  readonly status = 503
  /** Koa must not send the message to the client. */
  readonly expose = false
  override get message(): string {
    const reason = RedisError.describe(this.cause, 0)
    return reason === undefined ? `Redis ${this.operation} failed` : `Redis ${this.operation} failed: ${reason}`
  }

  // A connection error as what happened and where; anything else by its own message.
  // Only the fields Node and ioredis set are read, and only when they look like an
  // address or a host name, so no URL or credential can reach the message.
  private static describe(cause: unknown, depth: number): string | undefined {
    if (!(cause instanceof Error)) return undefined
    const { code, syscall, address, port, hostname, lastNodeError } = cause as {
      readonly code?: unknown
      readonly syscall?: unknown
      readonly address?: unknown
      readonly port?: unknown
      readonly hostname?: unknown
      readonly lastNodeError?: unknown
    }
    if (typeof code === "string" && typeof syscall === "string" && /^[A-Z0-9_]{1,32}$/.test(code)) {
      const where =
        typeof address === "string" && /^[\w.:%/-]{1,256}$/.test(address)
          ? ` ${address.includes(":") ? `[${address}]` : address}${typeof port === "number" ? `:${port}` : ""}`
          : ""
      if (syscall === "connect") return `cannot connect to${where === "" ? " Redis" : where} (${code})`
      if (syscall === "getaddrinfo") {
        const host = typeof hostname === "string" && /^[\w.-]{1,253}$/.test(hostname) ? hostname : "the Redis host"
        return `cannot resolve ${host} (${code})`
      }
      return `connection${where === "" ? "" : ` to${where}`} lost (${code})`
    }
    // ioredis' ClusterAllFailedError: no start-up node answered.
    if (lastNodeError !== undefined && depth === 0) {
      const last = RedisError.describe(lastNodeError, 1)
      return last === undefined ? "no Redis Cluster node reachable" : `no Redis Cluster node reachable, last: ${last}`
    }
    return cause.message
  }
}

/**
 * A session id did not match the id rule (`^[A-Za-z0-9_+/=-]{16,128}$`).
 * Nothing was sent to Redis.
 *
 * @since 4.0.0
 * @category errors
 */
export class InvalidSessionId extends Data.TaggedError("InvalidSessionId")<{
  readonly reason: string
}> {
  readonly status = 400
  readonly expose = true
  override get message(): string {
    return `Invalid session id: ${this.reason}`
  }
}

/**
 * Field names, values, `maxAge` or `fields` given to a store operation broke an
 * input rule. Nothing was written.
 *
 * @since 4.0.0
 * @category errors
 */
export class InvalidSessionData extends Data.TaggedError("InvalidSessionData")<{
  readonly reason: string
  /** The offending field, when there is one. */
  readonly field?: string
}> {
  readonly status = 400
  readonly expose = true
  override get message(): string {
    return this.field === undefined
      ? `Invalid session data: ${this.reason}`
      : `Invalid session data in field ${JSON.stringify(this.field.slice(0, 64))}: ${this.reason}`
  }
}

/**
 * Options given to a layer or to the Promise factory are invalid. The factory
 * throws it synchronously; layers fail with it when they are built.
 *
 * @since 4.0.0
 * @category errors
 */
export class SessionConfigError extends Data.TaggedError("SessionConfigError")<{
  readonly option: string
  readonly reason: string
}> {
  override get message(): string {
    return `Invalid option ${this.option}: ${this.reason}`
  }
}
