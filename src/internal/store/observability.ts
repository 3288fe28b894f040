// Spans and metrics of the store's operations, OpenTelemetry-style. One `Telemetry` per
// store, computed once: the span attributes (backend, address, prefix, number of
// referenced fields) and, per operation, the metric tags. Nothing here ever sees a
// session id, a value or a CSRF secret: attributes are about the store, not the session.
import { createHmac, randomBytes } from "node:crypto"
import { Context, Effect, Exit, FiberRef, Metric, MetricBoundaries, MetricLabel, Redacted } from "effect"
import type { Fiber, Tracer } from "effect"
import type { RedisClientService } from "../../RedisClient.js"

/** Store operations run, tagged `db.operation.name`, `db.system.name` and `outcome` (`success` | `failure`). */
export const operations = Metric.counter("session_store.operations", {
  description: "Session store operations, by operation and outcome",
  incremental: true
})

/** Duration of store operations in milliseconds, tagged `db.operation.name` and `db.system.name`. */
export const operationDuration = Metric.histogram(
  "session_store.operation.duration",
  MetricBoundaries.exponential({ start: 0.25, factor: 2, count: 14 }),
  "Duration of session store operations, in milliseconds"
)

/** Successful `SessionStore.set` writes, tagged `db.system.name`. */
export const sessionsCreated = Metric.counter("session_store.sessions.created", {
  description: "Sessions written by SessionStore.set (a Session or ctx.session calls it on an id it minted only)",
  incremental: true
})

/** Sessions deleted by `deleteByReference` (the sum of its counts), tagged `db.system.name`. */
export const sessionsRevoked = Metric.counter("session_store.sessions.revoked", {
  description: "Sessions deleted by SessionStore.deleteByReference",
  incremental: true
})

/** What the telemetry of one store is computed from. */
export interface TelemetryInfo {
  /** `"redis"`, `"memory"`, or undefined for a service made elsewhere (a test double). */
  readonly system: string | undefined
  readonly redis: RedisClientService | undefined
  readonly prefix: string
  readonly references: number
}

/** One operation's span options and metric tags (computed once per store and operation). */
export interface OperationTelemetry {
  readonly name: string
  readonly span: Tracer.SpanOptions
  readonly success: ReadonlyArray<MetricLabel.MetricLabel>
  readonly failure: ReadonlyArray<MetricLabel.MetricLabel>
  readonly timing: ReadonlyArray<MetricLabel.MetricLabel>
  readonly system: ReadonlyArray<MetricLabel.MetricLabel>
}

export interface Telemetry {
  /** The store's key prefix: a session's hash is `${prefix}:{${id}}`. */
  readonly prefix: string
  readonly attributes: Readonly<Record<string, unknown>>
  /** The operation's telemetry (`SessionStore.get`, …), cached. */
  readonly of: (operation: string) => OperationTelemetry
  /** The options of a `Session.*` span (no metrics: those count store operations). */
  readonly session: (operation: string) => Tracer.SpanOptions
}

/** Where a Redis client connects: a single server's host and port; nothing for a Cluster (the node depends on the key). */
const addressOf = (redis: RedisClientService): Record<string, unknown> => {
  if (redis.isCluster) return { "db.redis.cluster": true }
  const options = (redis.client as { options?: { host?: unknown; port?: unknown; path?: unknown } }).options ?? {}
  if (typeof options.path === "string" && options.path !== "") return { "server.address": options.path, "network.transport": "unix" }
  const attributes: Record<string, unknown> = {}
  if (typeof options.host === "string") attributes["server.address"] = options.host
  if (typeof options.port === "number") attributes["server.port"] = options.port
  return attributes
}

export const makeTelemetry = (info: TelemetryInfo): Telemetry => {
  const attributes: Record<string, unknown> = {}
  if (info.system !== undefined) attributes["db.system.name"] = info.system
  if (info.redis !== undefined) Object.assign(attributes, addressOf(info.redis))
  attributes["session_store.prefix"] = info.prefix
  attributes["session_store.references.count"] = info.references
  const system = info.system === undefined ? [] : [MetricLabel.make("db.system.name", info.system)]
  const cache = new Map<string, OperationTelemetry>()
  const of = (name: string): OperationTelemetry => {
    let found = cache.get(name)
    if (found === undefined) {
      const operation = MetricLabel.make("db.operation.name", name)
      found = {
        name,
        // No call-site stack: capturing one makes an Error per span, most of a span's cost.
        span: { kind: "client", captureStackTrace: false, attributes: { ...attributes, "db.operation.name": name } },
        success: [operation, ...system, MetricLabel.make("outcome", "success")],
        failure: [operation, ...system, MetricLabel.make("outcome", "failure")],
        timing: [operation, ...system],
        system
      }
      cache.set(name, found)
    }
    return found
  }
  const sessionSpans = new Map<string, Tracer.SpanOptions>()
  const session = (name: string): Tracer.SpanOptions => {
    let found = sessionSpans.get(name)
    if (found === undefined) sessionSpans.set(name, (found = { kind: "internal", captureStackTrace: false, attributes }))
    return found
  }
  return { prefix: info.prefix, attributes, of, session }
}

/** Records one finished operation: its duration, its outcome, and what it created or revoked. */
export const record = (operation: OperationTelemetry, started: number, ok: boolean, value: unknown): void => {
  operationDuration.unsafeUpdate(performance.now() - started, operation.timing)
  if (!ok) return operations.unsafeUpdate(1, operation.failure)
  operations.unsafeUpdate(1, operation.success)
  if (operation.name === "SessionStore.set") sessionsCreated.unsafeUpdate(1, operation.system)
  else if (operation.name === "SessionStore.deleteByReference" && typeof value === "number" && value > 0)
    sessionsRevoked.unsafeUpdate(value, operation.system)
}

// The tracer a fiber has when none was installed: its spans reach no one.
const nativeTracer = Effect.runSync(Effect.tracer)

/**
 * `effect` in a span, unless the fiber's tracer is Effect's default one (no tracer was
 * installed, so no one would see the span) or tracing is off: a span costs a context
 * entry, an attribute map and two clock reads, more than a Redis call's own JavaScript.
 */
export const withSpan = <A, E, R>(effect: Effect.Effect<A, E, R>, name: string, options: Tracer.SpanOptions): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => (isTraced(fiber) ? Effect.withSpan(effect, name, options) : effect))

/** Whether a span made in this fiber would reach a tracer someone installed. */
export const isTraced = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  fiber.currentTracer !== nativeTracer && fiber.getFiberRef(FiberRef.currentTracerEnabled)

/** `effect` as one store operation: in its span, with its metrics. */
export const observed = <A, E, R>(operation: OperationTelemetry, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  withSpan(
    Effect.suspend(() => {
      const started = performance.now()
      return Effect.onExit(effect, (exit) =>
        Effect.sync(() => record(operation, started, Exit.isSuccess(exit), Exit.isSuccess(exit) ? exit.value : undefined))
      )
    }),
    operation.name,
    operation.span
  )

/** The span attribute of the opt-in hash of the session id. */
export const SESSION_ID_HASH_ATTRIBUTE = "session_store.session.id_hash"

/** A keyed hash of session ids: `hash(id)` is 16 base64url characters (96 bits) of HMAC-SHA256. */
export interface SessionIdHasher {
  readonly hash: (id: string) => string
}

/**
 * The hasher spans use, or `undefined` (the default): no hash of the id on any span.
 * Read from the fiber's context when a span is made, so it is set per program or per app.
 */
export class SessionIdHash extends Context.Reference<SessionIdHash>()("koa-redis-session-sets/SessionIdHash", {
  defaultValue: (): SessionIdHasher | undefined => undefined
}) {}

// Without a key: one random key for the process, so its hashes correlate with each other.
let processHasher: SessionIdHasher | undefined

/** A key of at least 16 bytes; a short key would let ids be confirmed by brute force over the key. */
export const makeSessionIdHasher = (key?: string | Buffer | Redacted.Redacted<string>): SessionIdHasher | string => {
  if (key === undefined) return (processHasher ??= makeSessionIdHasher(randomBytes(32)) as SessionIdHasher)
  const secret: unknown = Redacted.isRedacted(key) ? Redacted.value(key) : key
  if (!(typeof secret === "string" || Buffer.isBuffer(secret))) return "must be a string, a Buffer or a Redacted string"
  if (Buffer.byteLength(secret) < 16) return "must be at least 16 bytes long"
  const keyBytes = Buffer.from(secret)
  // The ids of the requests in flight hash again and again (one span per operation).
  const recent = new Map<string, string>()
  return {
    hash: (id) => {
      let hashed = recent.get(id)
      if (hashed === undefined) {
        hashed = createHmac("sha256", keyBytes).update(id).digest("base64url").slice(0, 16)
        if (recent.size >= 1000) recent.clear()
        recent.set(id, hashed)
      }
      return hashed
    }
  }
}

/** The session id in a store key, when the key is the session's hash (`${prefix}:{${id}}`). */
const sessionIdOfKey = (prefix: string, key: string | undefined): string | undefined => {
  if (key === undefined || key.length <= prefix.length + 3 || !key.startsWith(prefix) || key[key.length - 1] !== "}") return undefined
  if (key.charCodeAt(prefix.length) !== 58 || key.charCodeAt(prefix.length + 1) !== 123) return undefined // ":{"
  const id = key.slice(prefix.length + 2, -1)
  return /^[\w-]+$/.test(id) ? id : undefined
}

/**
 * `step` (a command of an operation, run inside the operation's span) annotating that span
 * with the hash of the session id its first key names, when a hasher is set; else `step`.
 */
export const withSessionIdHash = <A, E, R>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  telemetry: Telemetry,
  keys: ReadonlyArray<string>,
  step: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const hasher = Context.get(fiber.currentContext, SessionIdHash)
  if (hasher === undefined) return step
  const id = sessionIdOfKey(telemetry.prefix, keys[0])
  return id === undefined ? step : Effect.zipRight(Effect.annotateCurrentSpan(SESSION_ID_HASH_ATTRIBUTE, hasher.hash(id)), step)
}
