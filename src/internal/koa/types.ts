// The Koa bridge's public types (re-exported by Koa.ts), apart so the bridge's
// internal modules can use them without importing the factory.
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Effect, ManagedRuntime } from "effect"
import type { Cluster, Redis, RedisOptions } from "ioredis"
import type * as Csrf from "../../Csrf.js"
import type { RedisClient } from "../../RedisClient.js"
import type { Session } from "../../Session.js"
import type { SessionService } from "../session/types.js"
import type { SessionStore } from "../../SessionStore.js"
import type { DurationInput } from "../duration.js"
import type { SessionDevice } from "../session/devices.js"
import type {
  DeleteByReferenceOptions,
  MaxAgeInput,
  SessionData,
  SessionInfo,
  SessionLifetime,
  SessionStoreOptions,
  SessionStoreService,
  SessionValue
} from "../store/types.js"

/**
 * The parts of a Koa application the factory reads.
 *
 * @since 4.0.0
 * @category models
 */
export interface KoaAppLike {
  keys?: unknown
}

/**
 * The parts of a Koa context the middleware uses (`ctx.cookies` is the `cookies` package).
 *
 * @since 4.0.0
 * @category models
 */
export interface KoaContextLike {
  readonly cookies: {
    get(name: string, options?: { signed?: boolean }): string | undefined
    set(name: string, value?: string | null, options?: Record<string, unknown>): unknown
  }
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** The client's address (Koa's `ctx.ip`, which honours `app.proxy`): recorded with `track: { ip: true }`. */
  readonly ip?: string | undefined
  /** Koa's `ctx.secure` (HTTPS, or `X-Forwarded-Proto` with `app.proxy`): what `cookies` writes `secure` cookies on. */
  readonly secure?: boolean | undefined
  session?: KoaSession | undefined
}

/**
 * Options of the factory: the store's, the connection's, the cookie's and CSRF's.
 *
 * The factory checks them all before it creates anything and throws a
 * `SessionConfigError` naming the first bad one: unknown names (with a did-you-mean),
 * wrong types, values the `cookies` package would reject on the first write, and the
 * store's rules (see {@link SessionStoreOptions}). v3's cookie pass-through options
 * `priority` and `partitioned` reach the cookie; `expires`, `maxage` and `secureProxy`
 * are refused with the reason (use `maxAge`, `maxAge` and `secure`).
 *
 * @since 4.0.0
 * @category models
 */
export interface KoaRedisSessionSetsOptions extends SessionStoreOptions, Csrf.CsrfOptions {
  /** Not with these options: a store the app built goes with {@link KoaStoreOptions}. */
  readonly store?: undefined
  /** An ioredis `Redis` or `Cluster` the app owns. The library never quits it. Not together with `redis`. */
  readonly client?: Redis | Cluster | undefined
  /**
   * Without `client`: a `redis://` or `rediss://` URL, or ioredis options (`{ host, port }`,
   * `{ path }` for a socket), for a connection the library owns (quit by `close()`).
   */
  readonly redis?: string | Omit<RedisOptions, "replyMapping"> | undefined
  /** Longest a Redis operation may take before the request fails with 503: a positive duration. Default 2 seconds. */
  readonly timeout?: DurationInput | undefined
  /** Cookie name: a non-empty string without `;`, `=` or control characters. Default `"session-id"`. */
  readonly key?: string | undefined
  /** Sign the cookie with `app.keys`. Default `true`; the factory throws when `app.keys` is missing or empty. */
  readonly signed?: boolean | undefined
  /** Default `true`. */
  readonly httpOnly?: boolean | undefined
  /** `"strict"`, `"lax"` or `"none"` (any case), `true` (strict) or `false` (no attribute). Default `"lax"`. */
  readonly sameSite?: "lax" | "strict" | "none" | boolean | undefined
  /** Default: the `cookies` package's (true on HTTPS requests). */
  readonly secure?: boolean | undefined
  /** Cookie domain, checked as the `cookies` package does. Default: none (the request's host). */
  readonly domain?: string | undefined
  /** Default `"/"`. */
  readonly path?: string | undefined
  /** Default `true`. */
  readonly overwrite?: boolean | undefined
  /** The cookie's `Priority` attribute (v3 passed it through to `cookies`). Default: none. */
  readonly priority?: "low" | "medium" | "high" | undefined
  /** The cookie's `Partitioned` attribute (CHIPS; browsers want `secure` with it). Default `false`. */
  readonly partitioned?: boolean | undefined
}

/**
 * Options of the factory over a store the app built (`store`), instead of the Redis store
 * it would build: an in-process store (`Effect.runSync(SessionStore.makeMemory(storeOptions))`,
 * nothing else to run), or any `SessionStoreService` an Effect program made. The store
 * brings its own options and backend, so the store's options (`prefix`, `references`,
 * `maxAge`, `absoluteMaxAge`, `track`, …) and the connection's (`client`, `redis`,
 * `timeout`) are not options here: the factory refuses them beside `store` with a
 * `SessionConfigError` naming the option (give them to the store's constructor). The
 * cookie's lifetime follows the store's `maxAge`. The middleware's `store.client` is the
 * store's ioredis client, or `undefined` for a store without Redis; its runtime provides
 * `SessionStore` only (no `RedisClient`); `close()` leaves the store, and any connection
 * under it, to whoever built it.
 *
 * @since 4.0.0
 * @category models
 */
export interface KoaStoreOptions extends Omit<
  KoaRedisSessionSetsOptions,
  keyof SessionStoreOptions | "client" | "redis" | "timeout" | "store"
> {
  /** The store the sessions live in. */
  readonly store: SessionStoreService
}

/**
 * `ctx.session`: the v3 session API, as Promises.
 *
 * @since 4.0.0
 * @category models
 */
export interface KoaSession {
  /** The Redis key of this session's hash (assigns an id if the request has none). */
  getKey(): string
  /** The session, or some `fields` of it; `{}` when there is none. Never writes. */
  get(fields?: ReadonlyArray<string>): Promise<SessionData>
  /** Writes fields, creating the session and sending the cookie when needed. */
  set(values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null): Promise<void>
  /** Removes fields and refreshes the cookie and lifetime. */
  unset(fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null): Promise<void>
  /** Refreshes the cookie and the session's lifetime. */
  touch(maxAge?: MaxAgeInput | null): Promise<void>
  /** Deletes the session and clears the cookie. */
  delete(): Promise<void>
  /** A new id for the same data (call it at login). The old id is dead afterwards. */
  regenerate(): Promise<void>
  /** A CSRF token (creates the session's secret when missing, recording it on `session`). */
  createCSRFToken(session?: Record<string, string> | null): Promise<string>
  /** Whether a CSRF token is valid; `false` for anything missing or malformed. */
  verifyCSRFToken(token: unknown): Promise<boolean>
  verifyCSRFToken(session: Record<string, string> | null | undefined, token: unknown): Promise<boolean>
  /** This account's live sessions (of this session's value of `field`), this one marked `current`, each with an opaque handle. */
  listSessions(field: string): Promise<Array<SessionDevice>>
  /** Signs out the session a handle from `listSessions` names, if it shares a referenced value with this one. */
  revokeSession(handle: unknown): Promise<boolean>
  /** Signs out every other session of this session's value of `field`; resolves to how many. */
  revokeOthers(field: string): Promise<number>
  /** When this session was created and when it ends; `undefined` without one. */
  lifetime(): Promise<SessionLifetime | undefined>
  /** The Effect twin of this object. */
  readonly effect: SessionService
}

/**
 * `SessionMiddleware.store`: the v3 Store API as Promises, plus revoke-all.
 *
 * @since 4.0.0
 * @category models
 */
export interface PromiseStore<Client extends Redis | Cluster | undefined = Redis | Cluster> {
  /** The ioredis client the store's commands go to; `undefined` for a store given as `store` that has none (a memory store). */
  readonly client: Client
  readonly prefix: string
  readonly references: ReadonlyArray<string>
  /** The default session lifetime, in milliseconds. */
  readonly maxAge: number
  /** Random bytes in a new session id. */
  readonly byteLength: number
  createSessionId(): string
  getSessionKey(id: string): string
  getReferenceKey(field: string, value: SessionValue): string
  get(id: string, fields?: ReadonlyArray<string>): Promise<SessionData>
  set(id: string, values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null): Promise<void>
  unset(id: string, fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null): Promise<boolean>
  touch(id: string, maxAge?: MaxAgeInput | null): Promise<boolean>
  delete(id: string): Promise<boolean>
  /**
   * Moves a session to `newId` (or a fresh id); resolves to the new id, or `undefined`
   * when there is no session. Keeps its remaining lifetime unless `maxAge` is given, and
   * rotates its CSRF secret (made with the factory's csrf options) when it has one.
   */
  regenerate(id: string, newId?: string, maxAge?: MaxAgeInput | null): Promise<string | undefined>
  listByReference(field: string, value: SessionValue): Promise<Array<string>>
  /**
   * Deletes every session whose `field` holds `value` but `options.except`; resolves to
   * how many. The way to "sign out everywhere" (or "everywhere else").
   */
  deleteByReference(field: string, value: SessionValue, options?: DeleteByReferenceOptions): Promise<number>
  /** The live sessions of a value with their times and devices, read page by page. */
  listSessions(field: string, value: SessionValue): AsyncIterable<SessionInfo>
  /** When the session was created and when it ends; `undefined` when it does not exist. */
  lifetime(id: string): Promise<SessionLifetime | undefined>
}

/**
 * The services an Effect run through {@link SessionMiddleware.run} may use.
 *
 * @since 4.0.0
 * @category models
 */
export type RequestServices = Session | SessionStore | RedisClient

/**
 * The options the factory fills in on `SessionMiddleware.options`, as v3 did.
 *
 * @since 4.0.0
 * @category models
 */
export interface ResolvedFactoryOptions {
  readonly key: string
  readonly signed: boolean
  readonly httpOnly: boolean
  readonly overwrite: boolean
  /** Milliseconds. */
  readonly maxAge: number
}

/**
 * What the factory returns: a Koa middleware with v3's properties.
 *
 * @since 4.0.0
 * @category middleware
 */
export interface SessionMiddleware<R extends SessionStore | RedisClient = SessionStore | RedisClient> {
  (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<unknown>
  /** The store as Promises; with the `store` option its `client` may be `undefined` (a store without Redis). */
  readonly store: PromiseStore<RedisClient extends R ? Redis | Cluster : Redis | Cluster | undefined>
  readonly tokens: Csrf.Csrf["tokens"]
  /**
   * The options given to the factory, filled in as v3 did: `key`, `signed`, `httpOnly`,
   * `overwrite` with their resolved values, and `maxAge` in milliseconds.
   */
  readonly options: Readonly<RedisClient extends R ? KoaRedisSessionSetsOptions : KoaStoreOptions> & ResolvedFactoryOptions
  /** A `ctx.session` for any context (the middleware does exactly this). */
  createSession(ctx: KoaContextLike): KoaSession
  getReferenceKey(field: string, value: SessionValue): string
  /**
   * Runs an Effect with this request's `Session`, the `SessionStore` and the
   * `RedisClient` provided (no `RedisClient` with the `store` option). Rejects with
   * the typed error itself; interrupted when the client goes away.
   */
  run<A, E>(ctx: KoaContextLike, effect: Effect.Effect<A, E, Session | R>): Promise<A>
  /** The runtime every call runs on: `SessionStore` and `RedisClient`, or `SessionStore` only with the `store` option. */
  readonly runtime: ManagedRuntime.ManagedRuntime<R, never>
  /** Releases the runtime and quits a connection the library opened. Never quits `options.client`, nor closes `options.store`. */
  close(): Promise<void>
}
