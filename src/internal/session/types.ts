// The per-request session's contract, shared by the Session tag (Session.ts) and the
// request state behind it (state.ts). Types only.
import type { Effect } from "effect"
import type { MaxAgeInput, SessionData, SessionLifetime, SessionStoreError, SessionValue } from "../store/types.js"
import type { SessionDevice } from "./devices.js"

export type { SessionDevice } from "./devices.js"

/**
 * Where the session id travels: a cookie, in Koa.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionCookie {
  /** The raw id from the request, if any (already signature-checked). */
  readonly read: () => string | undefined
  /** Sends the id with the given lifetime. */
  readonly write: (id: string, maxAgeMillis: number) => void
  /** Tells the client to forget its id. */
  readonly clear: () => void
}

/**
 * The per-request session operations.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionService {
  /** The current id, or `undefined` while the request has none (no valid cookie and nothing written yet). */
  readonly id: Effect.Effect<string | undefined>
  /** The Redis key of this session's hash. Assigns a (not yet written) id when there is none, as v3 did. */
  readonly getKey: Effect.Effect<string>
  /** The session, or some `fields` of it. `{}` when there is none. Never writes. */
  readonly get: (fields?: ReadonlyArray<string> | null) => Effect.Effect<SessionData, SessionStoreError>
  /** Writes `values`; creates the session (and sends the cookie) when needed. */
  readonly set: (values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  /** Removes `fields`, refreshing the lifetime and the cookie. Does nothing without a session. */
  readonly unset: (fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  /** Refreshes the lifetime and the cookie. Does nothing without a session. */
  readonly touch: (maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  /**
   * Deletes the session. The next `get()` sees a fresh, empty session.
   * Clears the cookie whenever the client may hold one: the request carried a session
   * cookie (even one whose session had expired or was revoked, or whose id was
   * malformed), or this request sent one. A request that carried none and was sent none
   * gets no Set-Cookie.
   */
  readonly delete: Effect.Effect<void, SessionStoreError>
  /**
   * Moves the session to a new id (call it at login, against session fixation):
   * the old id is dead, reference sets hold the new one, the new cookie is sent.
   * Without a session, the next write simply starts under a fresh id.
   *
   * It also rotates the CSRF secret when the session has one (none is created when it
   * has none), so a token minted before the call no longer verifies; and it keeps the
   * session's remaining lifetime, which the new cookie gets as its max age.
   */
  readonly regenerate: Effect.Effect<void, SessionStoreError>
  /**
   * A CSRF token; creates the session's secret when it has none and records it on `session` when given.
   * The secret on `session` is used as is, unless the session changed id in this request
   * (`regenerate`, `delete`, a revoke seen) after `session` was read: then the current
   * secret is used, and recorded on `session`.
   */
  readonly createCSRFToken: (session?: Record<string, string> | null) => Effect.Effect<string, SessionStoreError>
  /**
   * Whether `token` is valid for the session's secret. `false`, never an error, for a missing or malformed token or no secret.
   * Like `createCSRFToken`, ignores a secret on `session` read before an id change in this
   * request: a token minted before `regenerate()` does not verify after it, even through an old object.
   */
  readonly verifyCSRFToken: (
    session: Record<string, string> | null | undefined,
    token: unknown
  ) => Effect.Effect<boolean, SessionStoreError>
  /**
   * The live sessions of this session's value of the referenced `field` (a device list:
   * "your sessions"), this one marked `current`. Each carries an opaque `handle` for
   * `revokeSession`, never another session's id. `[]` without a session or a value.
   */
  readonly listSessions: (field: string) => Effect.Effect<Array<SessionDevice>, SessionStoreError>
  /**
   * Signs out the session `handle` names (a handle from `listSessions` in a request of
   * this same session): only a session holding the same value of a referenced field as
   * this one. This session's own handle signs this one out (and clears the cookie).
   * `false`, deleting nothing, for any other handle.
   */
  readonly revokeSession: (handle: unknown) => Effect.Effect<boolean, SessionStoreError>
  /**
   * Signs out every other session of this session's value of `field` ("sign out other
   * devices"), with `deleteByReference`'s guarantee; this one stays. How many it deleted.
   */
  readonly revokeOthers: (field: string) => Effect.Effect<number, SessionStoreError>
  /** When this session was created and when it ends (idle and absolute); `undefined` without one. */
  readonly lifetime: Effect.Effect<SessionLifetime | undefined, SessionStoreError>
}
