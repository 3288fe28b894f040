/**
 * The `Session` service: one per request, the Effect twin of `ctx.session`.
 *
 * It never writes on a read, never resurrects an id that no longer exists in
 * Redis (it mints a fresh one instead, checking existence in the same atomic
 * write), and never sends a malformed cookie value to Redis.
 *
 * @since 4.0.0
 */
import { randomBytes } from "node:crypto"
import { Context, Effect } from "effect"
import type { Csrf } from "./Csrf.js"
import { CSRF_SECRET_FIELD } from "./Csrf.js"
import * as Step from "./internal/step.js"
import { checkFieldList, SESSION_ID_PATTERN } from "./internal/validate.js"
import type { InvalidSessionData } from "./SessionError.js"
import type { MaxAgeInput, SessionData, SessionStoreError, SessionStoreService, SessionValue } from "./SessionStore.js"
import { ttlOf } from "./SessionStore.js"

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
  readonly verifyCSRFToken: (session: Record<string, string> | null | undefined, token: unknown) => Effect.Effect<boolean, SessionStoreError>
}

/**
 * The session of the current request.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Session } from "koa-redis-session-sets"
 *
 * const login = (userId: number) =>
 *   Effect.gen(function* () {
 *     const session = yield* Session
 *     yield* session.regenerate
 *     yield* session.set({ user_id: userId })
 *   })
 * ```
 *
 * @since 4.0.0
 * @category tags
 */
export class Session extends Context.Tag("koa-redis-session-sets/Session")<Session, SessionService>() {
  /** Builds a request's session over a store and the cookie that carries the id. */
  static readonly make = (store: SessionStoreService, csrf: Csrf, cookie: SessionCookie): SessionService =>
    Session.fromState(new SessionState(store, csrf, cookie))

  /** The Effect view of a request's {@link SessionState} (shared with `ctx.session`). */
  static readonly fromState = (state: SessionState): SessionService => {
    const redis = state.store.redis
    return {
      id: Effect.sync(() => state.id()),
      getKey: Effect.sync(() => state.getKey()),
      get: (fields) => Step.suspend(redis, () => state.get(fields)),
      set: (values, maxAge) => Step.suspend(redis, () => state.set(values, maxAge)),
      unset: (fields, maxAge) => Step.suspend(redis, () => state.unset(fields, maxAge)),
      touch: (maxAge) => Step.suspend(redis, () => state.touch(maxAge)),
      delete: Step.suspend(redis, () => state.delete()),
      regenerate: Step.suspend(redis, () => state.regenerate()),
      createCSRFToken: (session) => Step.suspend(redis, () => state.createCSRFToken(session)),
      verifyCSRFToken: (session, token) => Step.suspend(redis, () => state.verifyCSRFToken(session, token))
    }
  }
}

// Where the current id came from decides whether a write may create the session:
// only an id minted here may be created; any other is written only while it exists.
type Origin = "unread" | "none" | "cookie" | "minted" | "written" | "gone"

type Result<A> = Step.Step<A, SessionStoreError>

/**
 * A request's session as Steps: decisions here, Redis calls left to the runner
 * (an Effect for {@link Session}, a plain Promise for `ctx.session`).
 *
 * @since 4.0.0
 * @category models
 */
export class SessionState {
  private origin: Origin = "unread"
  private current: string | undefined = undefined
  private cookieSent = false
  // The request came with a session cookie, valid or not: the client holds one.
  private carried = false
  // Bumped whenever the id changes from one that may have held a secret: objects read
  // before then may hold a retired CSRF secret, and are trusted only for `secret`.
  private secretEpoch = 0
  private secret: string | undefined = undefined

  constructor(
    readonly store: SessionStoreService,
    private readonly csrf: Csrf,
    private readonly cookie: SessionCookie
  ) {}

  id(): string | undefined {
    this.resolve()
    return this.current
  }

  getKey(): string {
    this.resolve()
    return this.store.getSessionKey(this.current ?? this.mint())
  }

  get(fields?: ReadonlyArray<string> | null): Result<SessionData> {
    if (!this.mayExist()) {
      const bad = fields === undefined || fields === null ? undefined : this.checkFields(fields, true)
      return bad === undefined ? Step.done<SessionData>({}) : Step.failed(bad)
    }
    const id = this.current
    return Step.map(this.store.steps.get(id!, fields), (session) => {
      if (session["id"] === undefined && this.current === id) this.markGone()
      return session
    })
  }

  set(values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null): Result<void> {
    if (!this.mayExist()) {
      const id = this.origin === "minted" ? this.current! : this.mint()
      return Step.map(this.store.steps.set(id, values, maxAge), () => this.written(maxAge))
    }
    // An id from the cookie (or one revoked while this request ran) is written only
    // while it exists, checked inside the same atomic script: a revoke cannot be undone.
    return Step.flatMap(this.store.steps.setExisting(this.current!, values, maxAge), (written): Result<void> => {
      if (written) return Step.done(this.written(maxAge))
      this.retireSecrets()
      const fresh = this.mint()
      return Step.map(this.store.steps.set(fresh, values, maxAge), () => this.written(maxAge))
    })
  }

  unset(fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null): Result<void> {
    if (this.mayExist()) return this.refresh(this.store.steps.unset(this.current!, fields, maxAge), maxAge)
    // Without a session there is nothing to change, but bad arguments fail all the same.
    const bad = this.checkFields(fields, false) ?? this.checkMaxAge(maxAge)
    return bad === undefined ? Step.done(undefined) : Step.failed(bad)
  }

  touch(maxAge?: MaxAgeInput | null): Result<void> {
    if (this.mayExist()) return this.refresh(this.store.steps.touch(this.current!, maxAge), maxAge)
    const bad = this.checkMaxAge(maxAge)
    return bad === undefined ? Step.done(undefined) : Step.failed(bad)
  }

  delete(): Result<void> {
    this.resolve()
    // Whether the client may hold a cookie: the request carried one (whatever became of
    // its session: a revoked or expired id is signed out all the same), or one was sent.
    const clear = this.carried || this.cookieSent
    const forget = () => {
      this.origin = "none"
      this.current = undefined
      this.cookieSent = false
      this.carried = false
      this.retireSecrets()
      if (clear) this.cookie.clear()
    }
    if (!this.mayExist()) return Step.done(forget())
    return Step.map(this.store.steps.delete(this.current!), forget)
  }

  regenerate(): Result<void> {
    if (!this.mayExist()) {
      if (this.origin === "minted") this.current = undefined
      this.origin = "none"
      return Step.done(undefined)
    }
    // The store rotates the secret (if the session has one) in the same atomic step.
    const rotated = { csrfSecret: this.csrf.newSecret() }
    return Step.flatMap(this.store.steps.regenerate(this.current!, undefined, undefined, rotated), (next): Result<void> => {
      if (next === undefined) return Step.done(this.markGone())
      this.current = next
      this.origin = "written"
      this.retireSecrets()
      // The new hash kept the old one's remaining lifetime: so does the cookie. Nobody
      // else knows the new id yet, so what PTTL reads is what regenerate set (or -2
      // when a revoke-all reached the new id in between).
      const key = this.store.getSessionKey(next)
      return Step.request("SessionStore.regenerate", (client) => client.pttl(key), (ttl: number) => {
        if (this.current !== next) return
        if (ttl === -2) return this.markGone()
        this.writeCookie(ttl > 0 ? ttl : this.store.maxAgeMillis)
      })
    })
  }

  createCSRFToken(session?: Record<string, string> | null): Result<string> {
    const epoch = this.secretEpoch
    const withSecret = (secret: string): Result<string> => {
      if (session) session[CSRF_SECRET_FIELD] = secret
      if (epoch === this.secretEpoch) this.secret = secret
      return Step.done(this.csrf.create(secret))
    }
    const known = this.trusted(session)
    if (known) return withSecret(known)
    return Step.flatMap(this.get([CSRF_SECRET_FIELD]), (stored) => {
      const secret = stored[CSRF_SECRET_FIELD]
      if (secret) return withSecret(secret)
      const fresh = this.csrf.newSecret()
      return Step.flatMap(this.set({ [CSRF_SECRET_FIELD]: fresh }), () => withSecret(fresh))
    })
  }

  verifyCSRFToken(session: Record<string, string> | null | undefined, token: unknown): Result<boolean> {
    if (typeof token !== "string" || token === "") return Step.done(false)
    const known = this.trusted(session)
    if (known) return Step.done(this.csrf.verify(known, token))
    const epoch = this.secretEpoch
    return Step.map(this.get([CSRF_SECRET_FIELD]), (stored) => {
      const secret = stored[CSRF_SECRET_FIELD]
      if (secret && epoch === this.secretEpoch) this.secret = secret
      return this.csrf.verify(secret, token)
    })
  }

  /**
   * The secret on a session object the app passed in, if it may be used: always before
   * any id change in this request; after one, only when it is the secret this request
   * has seen since (an object read before `regenerate()` holds the retired one).
   */
  private trusted(session: Record<string, string> | null | undefined): string | undefined {
    const known = session?.[CSRF_SECRET_FIELD]
    if (!known) return undefined
    return this.secretEpoch === 0 || known === this.secret ? known : undefined
  }

  private retireSecrets(): void {
    this.secretEpoch++
    this.secret = undefined
  }

  private resolve(): void {
    if (this.origin !== "unread") return
    const fromCookie = this.cookie.read()
    if (fromCookie !== undefined && fromCookie !== "") this.carried = true
    if (fromCookie !== undefined && SESSION_ID_PATTERN.test(fromCookie)) {
      this.current = fromCookie
      this.origin = "cookie"
    } else this.origin = "none"
  }

  /** Whether the current id may hold data in Redis. */
  private mayExist(): boolean {
    this.resolve()
    return this.origin === "cookie" || this.origin === "written"
  }

  private mint(): string {
    this.current = randomBytes(this.store.byteLength).toString("base64url")
    this.origin = "minted"
    return this.current
  }

  private markGone(): void {
    this.origin = "gone"
    this.current = undefined
    this.retireSecrets()
  }

  // Called after the store accepted `maxAge`, so it is valid here.
  private written(maxAge: MaxAgeInput | null | undefined): void {
    this.origin = "written"
    const ttl = ttlOf(maxAge, this.store.maxAgeMillis)
    this.writeCookie(typeof ttl === "number" ? ttl : this.store.maxAgeMillis)
  }

  private writeCookie(maxAgeMillis: number): void {
    this.cookie.write(this.current!, maxAgeMillis)
    this.cookieSent = true
  }

  private refresh(operation: Result<boolean>, maxAge: MaxAgeInput | null | undefined): Result<void> {
    return Step.map(operation, (exists) => (exists ? this.written(maxAge) : this.markGone()))
  }

  private checkFields(fields: unknown, allowId: boolean): InvalidSessionData | undefined {
    const checked = checkFieldList(fields, this.store.limits, { allowId })
    return Array.isArray(checked) ? undefined : checked
  }

  private checkMaxAge(maxAge: MaxAgeInput | null | undefined): InvalidSessionData | undefined {
    const ttl = ttlOf(maxAge, this.store.maxAgeMillis)
    return typeof ttl === "number" ? undefined : ttl
  }
}
