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

// Causes made by this library carry no command data: a prototype marked with this is
// kept as it is (RedisTimeoutError, below, is marked).
const SAFE_CAUSE = Symbol.for("koa-redis-session-sets/safeCause")

/**
 * A Redis command failed, timed out, or the connection is down.
 * Koa answers 503 and never shows the cause to the client.
 *
 * When Redis refuses or cannot be reached, `cause` is the connection error ioredis
 * reported (a Node system error: `code` such as `"ECONNREFUSED"`, `address`, `port`),
 * and the message names it: `Redis SessionStore.get failed: cannot connect to
 * 127.0.0.1:6379 (ECONNREFUSED)`. Messages name addresses, never a URL or credentials.
 *
 * `cause` is a copy of what ioredis rejected with that keeps its kind (prototype and
 * `name`), `message`, `code`, and for connection errors `errno`, `syscall`, `address`,
 * `port` and `hostname` (ioredis' `lastNodeError`, a nested `cause` and an
 * `AggregateError`'s `errors` are copied the same way), and nothing else: ioredis
 * attaches the whole command to its errors (`command.args`: the session key, the id,
 * every value, the CSRF secret), and that must not reach `util.inspect`,
 * `JSON.stringify`, `Cause.pretty` or a structured logger. Redis messages that echo a
 * command's arguments (`unknown command '…', with args beginning with: …`) are cut there.
 *
 * `stack` is one line, `RedisError: <message>`: the error is created in a reply
 * callback, so a captured stack would say nothing about the caller, and Koa's default
 * error handler prints `stack` for every failed request. (`Cause.pretty` still adds
 * the spans the failure went through.)
 *
 * @since 4.0.0
 * @category errors
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  /** The store operation or Redis command that failed, e.g. `"SessionStore.set"`. */
  readonly operation: string
  /**
   * What ioredis (or the timeout) rejected with, or the connection error while Redis is
   * unreachable, as a copy without the command's arguments (see above).
   */
  readonly cause: unknown
}> {
  /** HTTP status Koa uses for this error. */
  readonly status = 503
  /** Koa must not send the message to the client. */
  readonly expose = false

  constructor(args: { readonly operation: string; readonly cause: unknown }) {
    super({ operation: args.operation, cause: RedisError.redact(args.cause, 0) })
    Object.defineProperty(this, "stack", { value: `${this.name}: ${this.message}`, writable: true, configurable: true, enumerable: false })
  }

  /** The serialised form: what `util.inspect` shows, the message included. */
  override toJSON(): unknown {
    return { _tag: this._tag, operation: this.operation, message: this.message, status: this.status, expose: this.expose, cause: this.cause }
  }

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

  // ---- Causes without the command's arguments ----

  // One copy per original (an outage fails every request with the same connection error).
  private static readonly copies = new WeakMap<object, Error>()
  private static readonly redacted = new WeakSet<object>()

  /**
   * `cause` without anything that can hold a command's arguments or a reply: a copy of
   * an Error with its prototype, name, message (cut where Redis echoes arguments), code
   * and the connection fields; any other value becomes an Error naming only its type.
   * The library's own causes (marked with `Symbol.for("koa-redis-session-sets/safeCause")`
   * on their prototype, e.g. `RedisTimeoutError`) and RedisErrors are kept as they are.
   */
  private static redact(cause: unknown, depth: number): unknown {
    if (cause === undefined) return undefined
    if (cause instanceof RedisError) return cause
    if (typeof cause !== "object" || cause === null || !(cause instanceof Error)) {
      return RedisError.mark(new Error(`Redis call rejected with a non-Error value (${cause === null ? "null" : typeof cause})`))
    }
    if (RedisError.redacted.has(cause)) return cause
    try {
      if ((cause as unknown as Record<symbol, unknown>)[SAFE_CAUSE] === true) return cause
      const cached = RedisError.copies.get(cause)
      if (cached !== undefined) return cached
      const copy = RedisError.copyOf(cause, depth)
      RedisError.copies.set(cause, copy)
      return copy
    } catch {
      // A hostile or exotic object (throwing getters): keep nothing of it.
      return RedisError.mark(new Error("Redis call failed (the cause could not be read)"))
    }
  }

  private static copyOf(cause: Error, depth: number): Error {
    const source = cause as unknown as Record<string, unknown>
    const name = typeof source["name"] === "string" && /^[\w$.-]{1,64}$/.test(source["name"]) ? source["name"] : "Error"
    const message = RedisError.redactMessage(typeof source["message"] === "string" ? source["message"] : "")
    // A real Error (what `util.types.isNativeError` and deep-equality checks look for), of the original's kind.
    const copy = new Error(message) as Error & Record<string, unknown>
    Object.setPrototypeOf(copy, Object.getPrototypeOf(cause) as object)
    const hidden = (key: string, value: unknown) =>
      Object.defineProperty(copy, key, { value, writable: true, configurable: true, enumerable: false })
    hidden("name", name)
    // The original's frames are code locations; its first line is the message, redacted.
    const frames = typeof source["stack"] === "string" ? source["stack"].split("\n").filter((line) => /^\s+at /.test(line)) : []
    hidden("stack", [`${name}: ${message}`, ...frames].join("\n"))
    const code = source["code"]
    if ((typeof code === "string" && /^[\w.-]{1,64}$/.test(code)) || typeof code === "number") copy["code"] = code
    if (typeof source["errno"] === "number") copy["errno"] = source["errno"]
    const syscall = source["syscall"]
    if (typeof syscall === "string" && /^\w{1,32}$/.test(syscall)) copy["syscall"] = syscall
    for (const key of ["address", "hostname"] as const) {
      const value = source[key]
      if (typeof value === "string" && /^[\w.:%/-]{1,256}$/.test(value)) copy[key] = value
    }
    if (typeof source["port"] === "number") copy["port"] = source["port"]
    // JSON.stringify and JSON loggers see the kind and the message too.
    hidden("toJSON", function (this: Record<string, unknown>) {
      return { name: this["name"], message: this["message"], ...this }
    })
    if (depth < 3) {
      // ClusterAllFailedError.lastNodeError: the last node's error, copied the same way.
      if (source["lastNodeError"] instanceof Error) copy["lastNodeError"] = RedisError.redact(source["lastNodeError"], depth + 1)
      if (source["cause"] !== undefined) hidden("cause", RedisError.redact(source["cause"], depth + 1))
      // AggregateError (a connect that tried several addresses).
      if (Array.isArray(source["errors"])) {
        hidden("errors", source["errors"].slice(0, 16).map((error: unknown) => RedisError.redact(error, depth + 1)))
      }
    }
    return RedisError.mark(copy)
  }

  private static mark<E extends Error>(error: E): E {
    RedisError.redacted.add(error)
    return error
  }

  // Redis echoes arguments in a few replies (an unknown command: `ERR unknown command
  // 'evalsha', with args beginning with: 'sha' '2' 'prefix:{id}' …`), and ioredis a reply
  // in one of its own errors (`Command queue state error … Last reply: …`): cut there.
  private static redactMessage(message: string): string {
    const cut = message
      .replace(/(with args beginning with:)[\s\S]*$/, "$1 (arguments removed)")
      .replace(/(Last reply:)[\s\S]*$/, "$1 (removed)")
    return cut.length > 1024 ? `${cut.slice(0, 1024)}…` : cut
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
 * A stored session field did not decode with the field's schema (see `SessionSchema`):
 * the data in Redis is not what the schema expects (written by older code, by hand, or
 * by a schema that changed since). Koa answers 500 and never shows it to the client.
 *
 * It names the field and what the schema expected, never the stored value: session
 * values are the user's, and effect's `ParseError` quotes the value, so it is not kept
 * (no `cause`).
 *
 * @since 4.0.0
 * @category errors
 */
export class SessionDecodeError extends Data.TaggedError("SessionDecodeError")<{
  /** The field whose stored value did not decode. */
  readonly field: string
  /** What the field's schema expects, as the schema describes itself (e.g. `NumberFromString`). */
  readonly expected: string
}> {
  readonly status = 500
  readonly expose = false
  override get message(): string {
    return `Stored session field ${JSON.stringify(this.field.slice(0, 64))} could not be decoded: expected ${this.expected}`
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

/**
 * The `cause` of a `RedisError` when Redis did not answer within the timeout. It carries
 * nothing but the timeout, so `RedisError` keeps it as it is (see `RedisError.cause`).
 *
 * @since 4.0.0
 * @category errors
 */
export class RedisTimeoutError extends Error {
  constructor(readonly millis: number) {
    super(`no reply from Redis within ${millis} ms`)
    this.name = "RedisTimeoutError"
  }
}
Object.defineProperty(RedisTimeoutError.prototype, SAFE_CAUSE, { value: true })

/**
 * The `cause` of a `RedisError` when a write on a Redis Cluster gave up: concurrent
 * writes kept changing the session's referenced fields for `attempts` compare-and-set
 * attempts in a row.
 *
 * @since 4.0.0
 * @category errors
 */
export class ClusterWriteConflict extends Error {
  constructor(readonly attempts: number) {
    super(`the session's referenced fields changed under ${attempts} attempts in a row`)
    this.name = "ClusterWriteConflict"
  }
}
// Only a count: `RedisError` keeps it as it is, `attempts` included.
Object.defineProperty(ClusterWriteConflict.prototype, SAFE_CAUSE, { value: true })

/**
 * What `run(ctx, effect)` rejects with when the client went away and the Effect
 * was interrupted. Koa does not log it (`expose`), and nobody receives the 499.
 *
 * @since 4.0.0
 * @category errors
 */
export class ClientClosedRequest extends Data.TaggedError("ClientClosedRequest")<{}> {
  readonly status = 499
  readonly expose = true
  override get message(): string {
    return "The client closed the request before the response was sent"
  }
}
