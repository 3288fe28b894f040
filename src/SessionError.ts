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
 * @since 4.0.0
 * @category errors
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  /** The store operation or Redis command that failed, e.g. `"SessionStore.set"`. */
  readonly operation: string
  /** What ioredis (or the timeout) rejected with. */
  readonly cause: unknown
}> {
  /** HTTP status Koa uses for this error. */
  readonly status = 503
  /** Koa must not send the message to the client. */
  readonly expose = false
  override get message(): string {
    const reason = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `Redis ${this.operation} failed${reason}`
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
