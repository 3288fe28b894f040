// Spans and metrics of the store's operations, OpenTelemetry-style. One `Telemetry` per
// store, computed once: the span attributes (backend, address, prefix, number of
// referenced fields) and, per operation, the metric tags. Nothing here ever sees a
// session id, a value or a CSRF secret: attributes are about the store, not the session.
import { Effect, Exit, FiberRef, Metric, MetricBoundaries, MetricLabel } from "effect"
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
  return { attributes, of, session }
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
