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
import { Effect, Layer } from "effect"
import type { Redacted } from "effect"
import type { SessionIdHasher } from "./internal/store/observability.js"
import {
  makeSessionIdHasher,
  SESSION_ID_HASH_ATTRIBUTE,
  SessionIdHash,
  operationDuration as operationDurationMetric,
  operations as operationsMetric,
  sessionsCreated as sessionsCreatedMetric,
  sessionsRevoked as sessionsRevokedMetric
} from "./internal/store/observability.js"
import { SessionConfigError } from "./SessionError.js"

export type { SessionIdHasher } from "./internal/store/observability.js"

const hasher = (key: string | Buffer | Redacted.Redacted<string> | undefined): SessionIdHasher => {
  const made = makeSessionIdHasher(key)
  if (typeof made === "string") throw new SessionConfigError({ option: "key", reason: made })
  return made
}

/**
 * Opt-in: a short keyed hash of the session id on the store's spans, to follow one session
 * across requests in a trace viewer without the id (a bearer credential) leaving the process.
 * The attribute `session_store.session.id_hash` is the first 16 base64url characters (96
 * bits) of HMAC-SHA256(key, id): without the key, an id cannot be recovered or confirmed
 * by hashing candidate ids. Give the same key to every process whose spans should
 * correlate (at least 16 bytes; keep it secret, and apart from the cookie keys); without
 * one, a random key drawn once per process, so hashes correlate within one process only.
 *
 * Off by default. It marks the `SessionStore.*` spans of a session's own operations
 * (`get`, `set`, …, not `listByReference` / `deleteByReference`) made through a `Session`
 * (`SessionMiddleware.run`, the `./http` middleware) over Redis, the spans a request makes.
 * Throws `SessionConfigError` for a key shorter than 16 bytes.
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import { SessionMetrics } from "koa-redis-session-sets"
 *
 * // Provided next to the store layer (e.g. to HttpApp.toWebHandlerLayer):
 * const IdHashLive = SessionMetrics.layerSessionIdHash(process.env.SPAN_ID_HASH_KEY)
 * // Or around one effect:
 * const traced = <A, E, R>(effect: Effect.Effect<A, E, R>) => SessionMetrics.withSessionIdHash(effect, process.env.SPAN_ID_HASH_KEY)
 * ```
 *
 * @since 4.0.0
 * @category layers
 */
export const layerSessionIdHash = (key?: string | Buffer | Redacted.Redacted<string>): Layer.Layer<never> =>
  Layer.succeed(SessionIdHash, hasher(key))

/**
 * `effect` with the session id hash on its spans (see {@link layerSessionIdHash}).
 *
 * @since 4.0.0
 * @category layers
 */
export const withSessionIdHash = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key?: string | Buffer | Redacted.Redacted<string>
): Effect.Effect<A, E, R> => Effect.provideService(effect, SessionIdHash, hasher(key))

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
  sessionsRevoked: sessionsRevokedMetric,
  /** The span attribute of the opt-in session id hash: `"session_store.session.id_hash"`. */
  sessionIdHashAttribute: SESSION_ID_HASH_ATTRIBUTE,
  layerSessionIdHash,
  withSessionIdHash
} as const
