// The store's contract: what every backend (Redis, Redis Cluster, memory) implements
// and what `SessionStore` provides. Types only, so the backends can depend on it and the
// public module can depend on them.
import type { Effect, Stream } from "effect"
import type { MaxAgeInput } from "../duration.js"
import type { Limits } from "../validate.js"
import type { InvalidSessionData, InvalidSessionId, RedisError } from "../../SessionError.js"

export type { MaxAgeInput } from "../duration.js"
export type { Limits } from "../validate.js"

/**
 * A value a session field accepts. Stored, and read back, as a string.
 *
 * @since 4.0.0
 * @category models
 */
export type SessionValue = string | number | boolean

/**
 * A session as read from Redis: field → string. Holds `id` once the session exists.
 *
 * @since 4.0.0
 * @category models
 */
export type SessionData = Record<string, string>

/**
 * Behaviour of the store. Every option is v3-compatible.
 *
 * Options are checked when the store is built (`make`/`layer` fail, the Koa factory
 * throws, with a `SessionConfigError` naming the option): unknown names are refused
 * with a did-you-mean (`unknown option \`referenecs\`; did you mean \`references\`?`),
 * and so are values of the wrong type. An `undefined` value counts as absent.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionStoreOptions {
  /** Key prefix. Keys are `<prefix>:{<id>}` (the hash) and `<prefix>:<field>:{<value>}` (a reference set). */
  readonly prefix?: string | undefined
  /** When no `prefix` is given, the prefix becomes `koa-redis-session-sets:${namespace}`. */
  readonly namespace?: string | undefined
  /**
   * Fields to cross-reference: v3's object form `{ user_id: {} }` or `["user_id"]`.
   * Names may not contain `:`, `{` or `}`: sets are keyed `<prefix>:<field>:{<value>}`, so
   * `["a", "a:{b"]` would make `("a", "b:{c")` and `("a:{b", "c")` share a key. Nor may
   * they be `id`, empty, or hold control characters.
   *
   * The object form takes per-field options: `{ user_id: { maxSessions: 5 } }` caps the
   * live sessions of one value (see {@link ReferenceOptions}).
   */
  readonly references?: ReadonlyArray<string> | Readonly<Record<string, ReferenceOptions | boolean | null>> | undefined
  /**
   * Session lifetime: milliseconds, a string the `ms` package parses (`"28 days"`, `"2h"`)
   * or an Effect duration string (`"250 millis"`), or a `Duration`; 1 ms to 1000 years. Default 28 days (also for `null`). `0` and `""`
   * are refused here, because v3 read them as the 28-day default (omit the option for
   * that), and so are negative numbers, `NaN` and strings that do not parse, such as
   * `"1 month"` (v3 fell back to 28 days). A per-call `maxAge` (`set(values, 0)`) keeps v3's meaning: falsy is the default.
   */
  readonly maxAge?: MaxAgeInput | undefined
  /** Random bytes in a new session id (base64url-encoded). 12 to 96, default 18. */
  readonly byteLength?: number | undefined
  /**
   * Input size limits. Defaults: 1000 fields per call (`maxFields`), 256-character field
   * names (`maxFieldLength`), 64 KiB values (`maxValueBytes`). Other names are refused.
   */
  readonly limits?: Partial<Limits> | undefined
  /**
   * Rolling sessions (default `false`, as v3): a read of a live session through the
   * per-request `Session` (`ctx.session.get`) also extends its idle lifetime to `maxAge`
   * (never shortening it) and re-sends the cookie, at most once per `rollingInterval`.
   * `SessionStore.get` never writes.
   */
  readonly rolling?: boolean | undefined
  /**
   * Least time between two read-side updates of one session (the rolling renewal, the
   * last-seen time): a burst of reads costs at most one write. Default: a tenth of
   * `maxAge`. Must be shorter than `maxAge`.
   */
  readonly rollingInterval?: MaxAgeInput | undefined
  /**
   * Absolute lifetime (default: none): a session dies at creation + `absoluteMaxAge`
   * whatever its activity. No write, `touch` or rolling read gives it a TTL past that
   * deadline; `regenerate` keeps the creation time. Must be at least `maxAge`. Sessions
   * written without a creation time (by v3, or before this option) count as created when
   * first written.
   */
  readonly absoluteMaxAge?: MaxAgeInput | undefined
  /**
   * Device metadata a Session write records in reserved fields of the hash (never in
   * reference sets): the request's `User-Agent` (cut to 512 characters) and client
   * address (`ctx.ip` in Koa). `listSessions` returns them.
   */
  readonly track?: TrackOptions | undefined
  /**
   * Called after a write evicted sessions to keep a value within its `maxSessions`: the
   * field, the value and how many sessions were signed out (never their ids). Exceptions
   * it throws are ignored.
   */
  readonly onEvict?: ((eviction: SessionEviction) => void) | undefined
}

/**
 * Options of one referenced field, in the object form of `references`. v3's `{}`, `true`
 * and `null` mean none.
 *
 * @since 4.0.0
 * @category models
 */
export interface ReferenceOptions {
  /**
   * Most live sessions one value may hold (an integer ≥ 1). A write that would give the
   * value one more deletes the least recently active sessions (with all their references),
   * atomically on a single server; see the README's "Security" section for the cluster.
   */
  readonly maxSessions?: number | undefined
}

/**
 * What device metadata Session writes record (the creation and last-seen times are
 * recorded whenever a control is on).
 *
 * @since 4.0.0
 * @category models
 */
export interface TrackOptions {
  readonly userAgent?: boolean | undefined
  readonly ip?: boolean | undefined
}

/**
 * Sessions a write evicted to keep a value within `maxSessions`.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionEviction {
  readonly field: string
  readonly value: string
  /** How many sessions were deleted. */
  readonly evicted: number
}

/**
 * A live session of a value, as `listSessions` reports it. Times are epoch milliseconds
 * (the store's clock: Redis' `TIME`, or Effect's `Clock` for the memory store); a time the
 * session never recorded (no control was on when it was written, or v3 wrote it) is absent.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionInfo {
  readonly id: string
  readonly createdAt?: number | undefined
  readonly lastSeenAt?: number | undefined
  /** When its idle lifetime ends; absent for a session without a TTL (v3 could leave one). */
  readonly expiresAt?: number | undefined
  readonly absoluteExpiresAt?: number | undefined
  readonly userAgent?: string | undefined
  readonly ip?: string | undefined
}

/**
 * When a session ends: `expiresAt` (idle) and `absoluteExpiresAt` (creation +
 * `absoluteMaxAge`), and when it was created. Epoch milliseconds.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionLifetime {
  readonly createdAt?: number | undefined
  readonly expiresAt?: number | undefined
  readonly absoluteExpiresAt?: number | undefined
}

/**
 * Options of `deleteByReference`.
 *
 * @since 4.0.0
 * @category models
 */
export interface DeleteByReferenceOptions {
  /** A session id to spare ("sign out my other devices"): it keeps its data and its references. */
  readonly except?: string | undefined
}

/**
 * The errors a store operation on one session can fail with.
 *
 * @since 4.0.0
 * @category errors
 */
export type SessionStoreError = RedisError | InvalidSessionId | InvalidSessionData

/**
 * The store's operations. Writes are one Lua script each: atomic and one round
 * trip on a standalone Redis. Inputs are checked before anything is sent.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionStoreService {
  /** Random bytes in a new session id. */
  readonly byteLength: number
  /** The resolved key prefix. */
  readonly prefix: string
  /** The referenced fields. */
  readonly references: ReadonlyArray<string>
  /** The default session lifetime, in milliseconds. */
  readonly maxAgeMillis: number
  /** The input size limits in force. */
  readonly limits: Limits
  /** A new crypto-random session id: `byteLength` bytes, base64url. */
  readonly createSessionId: Effect.Effect<string>
  /** The Redis key of a session's hash: `${prefix}:{${id}}` (v3.0.0's layout). */
  readonly getSessionKey: (id: string) => string
  /** The Redis key of the SET of session ids whose `field` holds `value`: `${prefix}:${field}:{${value}}` (v3.0.0's layout). */
  readonly getReferenceKey: (field: string, value: SessionValue) => string
  /**
   * The session's fields, or only `fields` (those present, plus `id`).
   * `{}` when the session does not exist.
   */
  readonly get: (id: string, fields?: ReadonlyArray<string>) => Effect.Effect<SessionData, SessionStoreError>
  /**
   * Writes `values`, creating the session when needed, and resets its lifetime
   * to `maxAge` (default: the store's). A referenced field that changes value
   * moves the id from the old value's set to the new one.
   */
  readonly set: (
    id: string,
    values: Readonly<Record<string, SessionValue>>,
    maxAge?: MaxAgeInput | null
  ) => Effect.Effect<void, SessionStoreError>
  /**
   * Like `set`, but writes only when the session exists, checked in the same
   * atomic step. Returns whether it wrote. Used to never resurrect a revoked id.
   */
  readonly setExisting: (
    id: string,
    values: Readonly<Record<string, SessionValue>>,
    maxAge?: MaxAgeInput | null
  ) => Effect.Effect<boolean, SessionStoreError>
  /**
   * Removes `fields` (and the id from their reference sets) and resets the
   * lifetime. Returns whether the session exists; without one nothing is written.
   */
  readonly unset: (id: string, fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null) => Effect.Effect<boolean, SessionStoreError>
  /** Resets the session's lifetime and extends its reference sets. Returns whether the session exists. */
  readonly touch: (id: string, maxAge?: MaxAgeInput | null) => Effect.Effect<boolean, SessionStoreError>
  /** Deletes the session and removes its id from every reference set. Returns whether it existed. */
  readonly delete: (id: string) => Effect.Effect<boolean, SessionStoreError>
  /**
   * Moves a session's data to a new id (`newId`, or a fresh one) atomically: the
   * old id stops existing and leaves every reference set. Returns the new id, or
   * `undefined` when the old session does not exist.
   *
   * Login hygiene, in the same atomic step on a single server (in the copy on a cluster):
   * - The CSRF secret (`_csrf_secret`) is rotated: when the session has one, the new id
   *   gets `options.csrfSecret` (default: a fresh one from the `csrf` package), so a
   *   token minted before the call no longer verifies. A session without a secret gets none.
   * - The new hash keeps the old one's remaining lifetime (a session that had no TTL,
   *   as v3 could leave, gets the store's `maxAge`). An explicit `maxAge` replaces it.
   */
  readonly regenerate: (
    id: string,
    newId?: string,
    maxAge?: MaxAgeInput | null,
    options?: RegenerateOptions
  ) => Effect.Effect<string | undefined, SessionStoreError>
  /**
   * Ids of the live sessions whose `field` holds `value`. Reads the set in SSCAN
   * batches and prunes ids of expired sessions (or of sessions that no longer hold the value).
   */
  readonly listByReference: (field: string, value: SessionValue) => Effect.Effect<Array<string>, RedisError | InvalidSessionData>
  /**
   * Deletes every session whose `field` holds `value` ("sign out everywhere").
   * Reads the set in SSCAN batches (bounded memory, fine for 100 000+ members) and
   * returns how many sessions it deleted.
   *
   * On a single server it cannot be escaped: its first step moves the set's members
   * aside in one atomic step, and from then on the write scripts refuse to change
   * those sessions or give them a new id (`regenerate` answers "no session",
   * `setExisting`/`touch`/`unset` write nothing, `set` fails with `InvalidSessionId`).
   * So when it returns, no session that held the value when it started is alive, nor
   * any id one moved to meanwhile. A fresh login (a session that had not held the
   * value) is not affected. On a Redis Cluster the same holds, by a protocol of
   * single-slot steps (README, "Redis Cluster").
   */
  readonly deleteByReference: (
    field: string,
    value: SessionValue,
    options?: DeleteByReferenceOptions
  ) => Effect.Effect<number, RedisError | InvalidSessionData | InvalidSessionId>
  /**
   * The live sessions whose `field` holds `value`, with their times and device metadata,
   * as a stream read page by page (bounded memory for sets of any size). Prunes ids of
   * sessions that are gone, as `listByReference` does.
   */
  readonly listSessions: (field: string, value: SessionValue) => Stream.Stream<SessionInfo, RedisError | InvalidSessionData>
  /** When the session was created and when it ends; `undefined` when it does not exist. */
  readonly lifetime: (id: string) => Effect.Effect<SessionLifetime | undefined, SessionStoreError>
}

/**
 * Options of `regenerate`.
 *
 * @since 4.0.0
 * @category models
 */
export interface RegenerateOptions {
  /** The CSRF secret the new id gets when the session has one (default: a fresh one, `csrf`'s default length). */
  readonly csrfSecret?: string | undefined
}
