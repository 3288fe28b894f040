/**
 * The metrics of the session store, as Effect `Metric`s: read them with `Metric.value`,
 * or export them (with `@effect/opentelemetry`'s metrics layer, for one).
 *
 * Every store operation counts, on every path: the `SessionStore` and `Session`
 * services, and `ctx.session` / `SessionMiddleware.store` (which update the metrics
 * directly, without a fiber). Tags never hold a session id or a value.
 *
 * @since 4.0.0
 */
import {
  operationDuration as operationDurationMetric,
  operations as operationsMetric,
  sessionsCreated as sessionsCreatedMetric,
  sessionsRevoked as sessionsRevokedMetric
} from "./internal/store/observability.js"

/**
 * The store's metrics.
 *
 * - `operations`: counter `session_store.operations`, tagged `db.operation.name`
 *   (`SessionStore.get`, `SessionStore.setExisting`, …), `db.system.name` (`redis` | `memory`)
 *   and `outcome` (`success` | `failure`).
 * - `operationDuration`: histogram `session_store.operation.duration` (milliseconds),
 *   tagged `db.operation.name` and `db.system.name`.
 * - `sessionsCreated`: counter `session_store.sessions.created`, tagged `db.system.name`:
 *   successful `SessionStore.set` writes. A `Session` and `ctx.session` call `set` only on an
 *   id they minted, so for them each is a new session; a direct `store.set(id, …)` counts too.
 * - `sessionsRevoked`: counter `session_store.sessions.revoked`, tagged `db.system.name`:
 *   the sessions `deleteByReference` deleted.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { SessionMetrics } from "koa-redis-session-sets"
 *
 * const gets = Metric.value(
 *   SessionMetrics.operations.pipe(
 *     Metric.tagged("db.operation.name", "SessionStore.get"),
 *     Metric.tagged("db.system.name", "redis"),
 *     Metric.tagged("outcome", "success")
 *   )
 * ) // Effect<MetricState.Counter<number>>
 * ```
 *
 * @since 4.0.0
 * @category models
 */
export const SessionMetrics = {
  operations: operationsMetric,
  operationDuration: operationDurationMetric,
  sessionsCreated: sessionsCreatedMetric,
  sessionsRevoked: sessionsRevokedMetric
} as const
