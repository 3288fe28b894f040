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
  readonly get: (fields?: ReadonlyArray<string>) => Effect.Effect<SessionData, SessionStoreError>
  /** Writes `values`; creates the session (and sends the cookie) when needed. */
  readonly set: (values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  /** Removes `fields`, refreshing the lifetime and the cookie. Does nothing without a session. */
  readonly unset: (fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  /** Refreshes the lifetime and the cookie. Does nothing without a session. */
  readonly touch: (maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  /** Deletes the session and clears the cookie. The next `get()` sees a fresh, empty session. */
  readonly delete: Effect.Effect<void, SessionStoreError>
  /**
   * Moves the session to a new id (call it at login, against session fixation):
   * the old id is dead, reference sets hold the new one, the new cookie is sent.
   * Without a session, the next write simply starts under a fresh id.
   */
  readonly regenerate: Effect.Effect<void, SessionStoreError>
  /** A CSRF token; creates the session's secret when it has none and records it on `session` when given. */
  readonly createCSRFToken: (session?: Record<string, string> | null) => Effect.Effect<string, SessionStoreError>
  /** Whether `token` is valid for the session's secret. `false`, never an error, for a missing or malformed token or no secret. */
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
  static readonly make = (store: SessionStoreService, csrf: Csrf, cookie: SessionCookie, byteLength: number): SessionService =>
    makeSession(store, csrf, cookie, byteLength)
}

// Where the current id came from decides whether a write may create the session:
// only an id minted here may be created; any other is written only while it exists.
type Origin = "unread" | "none" | "cookie" | "minted" | "written" | "gone"

const makeSession = (store: SessionStoreService, csrf: Csrf, cookie: SessionCookie, byteLength: number): SessionService => {
  let origin: Origin = "unread"
  let current: string | undefined
  let cookieSent = false

  const resolve = (): void => {
    if (origin !== "unread") return
    const fromCookie = cookie.read()
    if (fromCookie !== undefined && SESSION_ID_PATTERN.test(fromCookie)) {
      current = fromCookie
      origin = "cookie"
    } else origin = "none"
  }
  const mint = (): string => {
    current = randomBytes(byteLength).toString("base64url")
    origin = "minted"
    return current
  }
  // Called after the store accepted `maxAge`, so it is valid here.
  const sendCookie = (maxAge: MaxAgeInput | null | undefined) => {
    const ttl = ttlOf(maxAge, store.maxAgeMillis)
    cookie.write(current!, typeof ttl === "number" ? ttl : store.maxAgeMillis)
    cookieSent = true
  }
  // Without a session there is nothing to read or change, but bad arguments fail all the same.
  const checkFields = (fields: unknown, allowId: boolean): InvalidSessionData | undefined => {
    const checked = checkFieldList(fields, store.limits, { allowId })
    return Array.isArray(checked) ? undefined : checked
  }
  const checkMaxAge = (maxAge: MaxAgeInput | null | undefined): InvalidSessionData | undefined => {
    const ttl = ttlOf(maxAge, store.maxAgeMillis)
    return typeof ttl === "number" ? undefined : ttl
  }
  /** Whether the current id may hold data in Redis. */
  const mayExist = (): boolean => {
    resolve()
    return origin === "cookie" || origin === "written"
  }
  const markGone = () => {
    origin = "gone"
    current = undefined
  }

  const get = (fields?: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      if (!mayExist()) {
        const bad = fields === undefined || fields === null ? undefined : checkFields(fields, true)
        return bad === undefined ? Effect.succeed<SessionData>({}) : Effect.fail(bad)
      }
      return Effect.map(store.get(current!, fields), (session) => {
        if (session["id"] === undefined) markGone()
        return session
      })
    })

  const set = (values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null) =>
    Effect.suspend((): Effect.Effect<void, SessionStoreError> => {
      if (!mayExist()) {
        const id = origin === "minted" ? current! : mint()
        return Effect.map(store.set(id, values, maxAge), () => {
          origin = "written"
          sendCookie(maxAge)
        })
      }
      // An id from the cookie (or one revoked while this request ran) is written only
      // while it exists, checked inside the same atomic script: a revoke cannot be undone.
      return Effect.flatMap(store.setExisting(current!, values, maxAge), (written) => {
        if (written) {
          origin = "written"
          sendCookie(maxAge)
          return Effect.void
        }
        const fresh = mint()
        return Effect.map(store.set(fresh, values, maxAge), () => {
          origin = "written"
          sendCookie(maxAge)
        })
      })
    })

  const refresh = <E>(operation: Effect.Effect<boolean, E>, maxAge: MaxAgeInput | null | undefined) =>
    Effect.map(operation, (exists) => {
      if (exists) sendCookie(maxAge)
      else markGone()
    })

  const self: SessionService = {
    id: Effect.sync(() => {
      resolve()
      return current
    }),
    getKey: Effect.sync(() => {
      resolve()
      return store.getSessionKey(current ?? mint())
    }),
    get,
    set,
    unset: (fields, maxAge) =>
      Effect.suspend(() => {
        if (mayExist()) return refresh(store.unset(current!, fields), maxAge)
        const bad = checkFields(fields, false) ?? checkMaxAge(maxAge)
        return bad === undefined ? Effect.void : Effect.fail(bad)
      }),
    touch: (maxAge) =>
      Effect.suspend(() => {
        if (mayExist()) return refresh(store.touch(current!, maxAge), maxAge)
        const bad = checkMaxAge(maxAge)
        return bad === undefined ? Effect.void : Effect.fail(bad)
      }),
    delete: Effect.suspend(() => {
      const hadCookie = (resolve(), origin === "cookie") || cookieSent
      const deleted = mayExist() ? Effect.asVoid(store.delete(current!)) : Effect.void
      return Effect.map(deleted, () => {
        origin = "none"
        current = undefined
        cookieSent = false
        if (hadCookie) cookie.clear()
      })
    }),
    regenerate: Effect.suspend(() => {
      if (!mayExist()) {
        if (origin === "minted") current = undefined
        origin = "none"
        return Effect.void
      }
      return Effect.map(store.regenerate(current!), (next) => {
        if (next === undefined) return markGone()
        current = next
        origin = "written"
        sendCookie(undefined)
      })
    }),
    createCSRFToken: (session) =>
      Effect.gen(function* () {
        let secret = session?.[CSRF_SECRET_FIELD]
        if (!secret) secret = (yield* get([CSRF_SECRET_FIELD]))[CSRF_SECRET_FIELD]
        if (!secret) {
          secret = yield* csrf.secret
          yield* set({ [CSRF_SECRET_FIELD]: secret })
        }
        if (session) session[CSRF_SECRET_FIELD] = secret
        return csrf.create(secret)
      }),
    verifyCSRFToken: (session, token) =>
      Effect.suspend(() => {
        if (typeof token !== "string" || token === "") return Effect.succeed(false)
        const known = session?.[CSRF_SECRET_FIELD]
        if (known) return Effect.succeed(csrf.verify(known, token))
        return Effect.map(get([CSRF_SECRET_FIELD]), (stored) => csrf.verify(stored[CSRF_SECRET_FIELD], token))
      })
  }
  return self
}
