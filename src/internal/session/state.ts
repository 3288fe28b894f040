// A request's session: where its id came from, the cookie, the CSRF secret it has
// seen, and the store actions each operation takes. Written once; the Effect API runs
// its actions as Effects (`effectView`), the Promise facade with callbacks.
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import type { Csrf } from "../../Csrf.js"
import { CSRF_SECRET_FIELD } from "../../Csrf.js"
import { InvalidSessionData } from "../../SessionError.js"
import type { Action } from "../store/action.js"
import { andThen, done, failed, map } from "../store/action.js"
import type { ClientInfo } from "../store/controls.js"
import type { SessionLifetime } from "../store/types.js"
import type { SessionDevice } from "./devices.js"
import { deviceOf, isHandleOf } from "./devices.js"
import { ttlOf } from "../store/plan.js"
import { isTraced } from "../store/observability.js"
import { toObservedEffect } from "../store/run.js"
import type { StoreActions } from "../store/service.js"
import { backendOf } from "../store/service.js"
import type { MaxAgeInput, SessionData, SessionInfo, SessionStoreError, SessionStoreService, SessionValue } from "../store/types.js"
import { checkFieldList, SESSION_ID_PATTERN } from "../validate.js"
import type { SessionCookie, SessionService } from "./types.js"

/** The Effect view of a request's state (the same state `ctx.session` uses). */
// Each operation runs in a `Session.<operation>` span, the store operations it takes
// (`SessionStore.get`, `SessionStore.setExisting`, …) in spans of their own under it.
export const effectView = (state: SessionState): SessionService => {
  const { redis, telemetry } = backendOf(state.store)
  // One look at the fiber: without a tracer, no span and no further look per command.
  const run = <A>(name: string, thunk: () => Result<A>): Effect.Effect<A, SessionStoreError> =>
    Effect.withFiberRuntime((fiber) =>
      isTraced(fiber)
        ? Effect.withSpan(
            Effect.suspend(() => toObservedEffect(redis, telemetry, thunk())),
            name,
            telemetry.session(name)
          )
        : toObservedEffect(redis, telemetry, thunk(), undefined, true)
    )
  // The operations that are Effects rather than functions are made when first used.
  return {
    get id() {
      return Effect.sync(() => state.id())
    },
    get getKey() {
      return Effect.sync(() => state.getKey())
    },
    get: (fields) => run("Session.get", () => state.get(fields)),
    set: (values, maxAge) => run("Session.set", () => state.set(values, maxAge)),
    unset: (fields, maxAge) => run("Session.unset", () => state.unset(fields, maxAge)),
    touch: (maxAge) => run("Session.touch", () => state.touch(maxAge)),
    get delete() {
      return run("Session.delete", () => state.delete())
    },
    get regenerate() {
      return run("Session.regenerate", () => state.regenerate())
    },
    createCSRFToken: (session) => run("Session.createCSRFToken", () => state.createCSRFToken(session)),
    verifyCSRFToken: (session, token) => run("Session.verifyCSRFToken", () => state.verifyCSRFToken(session, token)),
    listSessions: (field) => run("Session.listSessions", () => state.listSessions(field)),
    revokeSession: (handle) => run("Session.revokeSession", () => state.revokeSession(handle)),
    revokeOthers: (field) => run("Session.revokeOthers", () => state.revokeOthers(field)),
    get lifetime() {
      return run("Session.lifetime", () => state.lifetime())
    }
  }
}

// Where the current id came from decides whether a write may create the session:
// only an id minted here may be created; any other is written only while it exists.
type Origin = "unread" | "none" | "cookie" | "minted" | "written" | "gone"

type Result<A> = Action<A, SessionStoreError>

/**
 * A request's session: decisions here, the store's actions left to the runner (an Effect
 * for `Session`, a plain Promise for `ctx.session`).
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

  private readonly actions: StoreActions

  constructor(
    readonly store: SessionStoreService,
    private readonly csrf: Csrf,
    private readonly cookie: SessionCookie,
    // What the request tells of its device, read only when the store tracks it.
    private readonly clientInfo?: () => ClientInfo
  ) {
    this.actions = backendOf(store).actions
  }

  private client(): ClientInfo | undefined {
    const { controls } = backendOf(this.store)
    return controls.trackUserAgent || controls.trackIp ? this.clientInfo?.() : undefined
  }

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
      return bad === undefined ? done<SessionData>({}) : failed(bad)
    }
    const id = this.current
    return map(this.actions.read(id!, fields, this.client()), ({ session, renewedTtl }) => {
      if (session["id"] === undefined && this.current === id) this.markGone()
      // A rolling read renewed the session: the cookie follows.
      else if (renewedTtl !== undefined && this.current === id) this.writeCookie(renewedTtl)
      return session
    })
  }

  set(values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null): Result<void> {
    if (!this.mayExist()) {
      const id = this.origin === "minted" ? this.current! : this.mint()
      return map(this.actions.set(id, values, maxAge, this.client()), () => this.written(maxAge))
    }
    // An id from the cookie (or one revoked while this request ran) is written only
    // while it exists, checked inside the same atomic script: a revoke cannot be undone.
    return andThen(this.actions.setExisting(this.current!, values, maxAge, this.client()), (written): Result<void> => {
      if (written) return done(this.written(maxAge))
      this.retireSecrets()
      const fresh = this.mint()
      return map(this.actions.set(fresh, values, maxAge, this.client()), () => this.written(maxAge))
    })
  }

  unset(fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null): Result<void> {
    if (this.mayExist()) return this.refresh(this.actions.unset(this.current!, fields, maxAge), maxAge)
    // Without a session there is nothing to change, but bad arguments fail all the same.
    const bad = this.checkFields(fields, false) ?? this.checkMaxAge(maxAge)
    return bad === undefined ? done(undefined) : failed(bad)
  }

  touch(maxAge?: MaxAgeInput | null): Result<void> {
    if (this.mayExist()) return this.refresh(this.actions.touch(this.current!, maxAge), maxAge)
    const bad = this.checkMaxAge(maxAge)
    return bad === undefined ? done(undefined) : failed(bad)
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
    if (!this.mayExist()) return done(forget())
    return map(this.actions.delete(this.current!), forget)
  }

  regenerate(): Result<void> {
    if (!this.mayExist()) {
      if (this.origin === "minted") this.current = undefined
      this.origin = "none"
      return done(undefined)
    }
    // The store rotates the secret (if the session has one) in the same atomic step.
    const rotated = { csrfSecret: this.csrf.newSecret() }
    return andThen(this.actions.regenerate(this.current!, undefined, undefined, rotated), (next): Result<void> => {
      if (next === undefined) return done(this.markGone())
      this.current = next.id
      this.origin = "written"
      this.retireSecrets()
      // The new hash kept the old one's remaining lifetime: so does the cookie.
      this.writeCookie(next.ttl ?? this.store.maxAgeMillis)
      return done(undefined)
    })
  }

  createCSRFToken(session?: Record<string, string> | null): Result<string> {
    const epoch = this.secretEpoch
    const withSecret = (secret: string): Result<string> => {
      if (session) session[CSRF_SECRET_FIELD] = secret
      if (epoch === this.secretEpoch) this.secret = secret
      return done(this.csrf.create(secret))
    }
    const known = this.trusted(session)
    if (known) return withSecret(known)
    return andThen(this.get([CSRF_SECRET_FIELD]), (stored) => {
      const secret = stored[CSRF_SECRET_FIELD]
      if (secret) return withSecret(secret)
      const fresh = this.csrf.newSecret()
      return andThen(this.set({ [CSRF_SECRET_FIELD]: fresh }), () => withSecret(fresh))
    })
  }

  verifyCSRFToken(session: Record<string, string> | null | undefined, token: unknown): Result<boolean> {
    if (typeof token !== "string" || token === "") return done(false)
    const known = this.trusted(session)
    if (known) return done(this.csrf.verify(known, token))
    const epoch = this.secretEpoch
    return map(this.get([CSRF_SECRET_FIELD]), (stored) => {
      const secret = stored[CSRF_SECRET_FIELD]
      if (secret && epoch === this.secretEpoch) this.secret = secret
      return this.csrf.verify(secret, token)
    })
  }

  /** The live sessions of this session's `field` value, this one marked; `[]` without a session or a value. */
  listSessions(field: string): Result<Array<SessionDevice>> {
    return this.withValue(field, [], (viewer, value) =>
      map(this.allSessions(field, value), (infos) => infos.map((info) => deviceOf(viewer, field, info)))
    )
  }

  /**
   * Deletes the session `handle` names (from this request's `listSessions`), when it
   * holds the same value of a referenced field as this one; the current session's own
   * handle signs this one out. Whether a session was deleted.
   */
  revokeSession(handle: unknown): Result<boolean> {
    if (typeof handle !== "string" || handle === "" || !this.mayExist()) return done(false)
    const viewer = this.current!
    const fields = this.store.references
    if (fields.length === 0) return done(false)
    return andThen(this.get(fields), (session): Result<boolean> => {
      if (this.current !== viewer) return done(false)
      const tryField = (i: number): Result<boolean> => {
        if (i === fields.length) return done(false)
        const field = fields[i]!
        const value = session[field]
        if (value === undefined) return tryField(i + 1)
        return andThen(this.allSessions(field, value), (infos): Result<boolean> => {
          const target = infos.find((info) => isHandleOf(handle, viewer, field, info.id))
          if (target === undefined) return tryField(i + 1)
          if (target.id === viewer) return map(this.delete(), () => true)
          return this.actions.deleteHolding(target.id, field, value)
        })
      }
      return tryField(0)
    })
  }

  /** Deletes every other session of this session's `field` value (not this one); how many. */
  revokeOthers(field: string): Result<number> {
    return this.withValue(field, 0, (viewer, value) => this.actions.deleteByReference(field, value, viewer))
  }

  /** When this session was created and ends; `undefined` without one. */
  lifetime(): Result<SessionLifetime | undefined> {
    if (!this.mayExist()) return done(undefined)
    const id = this.current!
    return map(this.actions.lifetime(id), (lifetime) => {
      if (lifetime === undefined && this.current === id) this.markGone()
      return lifetime
    })
  }

  // `f` with this session's id and its value of `field` (a referenced one), else `none`.
  private withValue<A>(field: string, none: A, f: (viewer: string, value: string) => Result<A>): Result<A> {
    if (!this.store.references.includes(field)) return failed(new InvalidSessionData({ reason: "not a configured reference field", field }))
    if (!this.mayExist()) return done(none)
    const viewer = this.current!
    return andThen(this.get([field]), (session) => {
      const value = session[field]
      return value === undefined || this.current !== viewer ? done(none) : f(viewer, value)
    })
  }

  // Every page of the listing; a member SSCAN returns twice is listed once.
  private allSessions(field: string, value: string): Result<Array<SessionInfo>> {
    const seen = new Set<string>()
    const found: Array<SessionInfo> = []
    const page = (cursor: string): Result<Array<SessionInfo>> =>
      andThen(this.actions.listSessionsPage(field, value, cursor), (next) => {
        for (const info of next.sessions) {
          if (seen.has(info.id)) continue
          seen.add(info.id)
          found.push(info)
        }
        return next.cursor === "0" ? done(found) : page(next.cursor)
      })
    return page("0")
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
    return map(operation, (exists) => (exists ? this.written(maxAge) : this.markGone()))
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
