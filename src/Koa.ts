/**
 * The Koa bridge and the v3 Promise facade:
 * `const SessionMiddleware = KoaRedisSessionSets(app, options)`.
 *
 * One runtime per factory call; each `ctx.session` call runs one Effect on it.
 * Promises reject with the typed error instances themselves.
 *
 * @since 4.0.0
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Cause, Context, Data, Effect, Exit, FiberId, Layer, ManagedRuntime, Runtime } from "effect"
import type { Duration } from "effect"
import { Cluster, Redis } from "ioredis"
import type { RedisOptions } from "ioredis"
import type {} from "koa"
import * as Csrf from "./Csrf.js"
import { quit, RedisClient } from "./RedisClient.js"
import type { RedisClientService } from "./RedisClient.js"
import * as Step from "./internal/step.js"
import { checkFactoryOptions } from "./internal/options.js"
import { CookieSignatures } from "./internal/signature.js"
import { Session, SessionState } from "./Session.js"
import type { SessionCookie, SessionService } from "./Session.js"
import { SessionConfigError } from "./SessionError.js"
import { makeWith, resolveOptionValues, SessionStore } from "./SessionStore.js"
import type { MaxAgeInput, SessionData, SessionStoreOptions, SessionStoreService, SessionValue } from "./SessionStore.js"

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
  /** An ioredis `Redis` or `Cluster` the app owns. The library never quits it. Not together with `redis`. */
  readonly client?: Redis | Cluster | undefined
  /**
   * Without `client`: a `redis://` or `rediss://` URL, or ioredis options (`{ host, port }`,
   * `{ path }` for a socket), for a connection the library owns (quit by `close()`).
   */
  readonly redis?: string | Omit<RedisOptions, "replyMapping"> | undefined
  /** Longest a Redis operation may take before the request fails with 503: a positive duration. Default 2 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
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
  /** The Effect twin of this object. */
  readonly effect: SessionService
}

/**
 * `SessionMiddleware.store`: the v3 Store API as Promises, plus revoke-all.
 *
 * @since 4.0.0
 * @category models
 */
export interface PromiseStore {
  readonly client: Redis | Cluster
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
  /** Deletes every session whose `field` holds `value`; resolves to how many. The way to "sign out everywhere". */
  deleteByReference(field: string, value: SessionValue): Promise<number>
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
export interface SessionMiddleware {
  (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<unknown>
  readonly store: PromiseStore
  readonly tokens: Csrf.Csrf["tokens"]
  /**
   * The options given to the factory, filled in as v3 did: `key`, `signed`, `httpOnly`,
   * `overwrite` with their resolved values, and `maxAge` in milliseconds.
   */
  readonly options: Readonly<KoaRedisSessionSetsOptions> & ResolvedFactoryOptions
  /** A `ctx.session` for any context (the middleware does exactly this). */
  createSession(ctx: KoaContextLike): KoaSession
  getReferenceKey(field: string, value: SessionValue): string
  /**
   * Runs an Effect with this request's `Session`, the `SessionStore` and the
   * `RedisClient` provided. Rejects with the typed error itself; interrupted
   * when the client goes away.
   */
  run<A, E>(ctx: KoaContextLike, effect: Effect.Effect<A, E, RequestServices>): Promise<A>
  /** The runtime every call runs on. */
  readonly runtime: ManagedRuntime.ManagedRuntime<SessionStore | RedisClient, never>
  /** Releases the runtime and quits a connection the library opened. Never quits `options.client`. */
  close(): Promise<void>
}

const COOKIE_DEFAULTS = { key: "session-id", signed: true, httpOnly: true, sameSite: "lax", overwrite: true, path: "/" } as const

/**
 * Creates the session middleware (v3's default export).
 *
 * @example
 * ```ts
 * import Koa from "koa"
 * import { Redis } from "ioredis"
 * import KoaRedisSessionSets from "koa-redis-session-sets"
 *
 * const app = new Koa()
 * app.keys = ["a secret"]
 * const client = new Redis()
 * const Session = KoaRedisSessionSets(app, { client, references: { user_id: {} } })
 * app.use(Session)
 * app.use(async (ctx) => {
 *   await ctx.session.set({ user_id: 1 })
 *   ctx.body = await ctx.session.get()
 * })
 * ```
 *
 * @since 4.0.0
 * @category constructors
 */
export function koaRedisSessionSets(app: KoaAppLike, options: KoaRedisSessionSetsOptions = {}): SessionMiddleware {
  // Every option is checked before anything is created (a connection included): the
  // names and the factory's own values here, the store's values by resolveOptionValues.
  const checked = checkFactoryOptions(app, options)
  if (checked instanceof SessionConfigError) throw checked
  const storeOptions = resolveOptionValues(options)
  if (storeOptions instanceof SessionConfigError) throw storeOptions
  const key = checked.key ?? COOKIE_DEFAULTS.key
  const signed = checked.signed ?? COOKIE_DEFAULTS.signed
  const cookieOptions: Record<string, unknown> = {
    signed,
    httpOnly: checked.httpOnly ?? COOKIE_DEFAULTS.httpOnly,
    sameSite: checked.sameSite ?? COOKIE_DEFAULTS.sameSite,
    overwrite: checked.overwrite ?? COOKIE_DEFAULTS.overwrite,
    path: checked.path ?? COOKIE_DEFAULTS.path
  }
  if (checked.secure !== undefined) cookieOptions["secure"] = checked.secure
  if (checked.domain !== undefined) cookieOptions["domain"] = checked.domain
  // v3 passed every option to `ctx.cookies.set`: these two reach the cookie as they did.
  if (checked.priority !== undefined) cookieOptions["priority"] = checked.priority
  if (checked.partitioned !== undefined) cookieOptions["partitioned"] = checked.partitioned

  const owned = options.client === undefined
  const client = options.client ?? createOwnedClient(options.redis)
  const redis: RedisClientService = RedisClient.unsafeFromClient(client, { timeout: options.timeout })
  const store = makeWith(redis, storeOptions)
  const cookieSettings = new CookieSettings(app, key, signed, cookieOptions, store.maxAgeMillis)
  const csrf = Csrf.make(options)
  const context = Context.make(RedisClient, redis).pipe(Context.add(SessionStore, store))
  const runtime = ManagedRuntime.make(Layer.succeedContext(context))

  // The request's runtime: the shared one plus its Session. Building it directly costs
  // about a sixth of `Effect.provideService`, which goes through a FiberRef per call.
  let base: Runtime.Runtime<SessionStore | RedisClient> | undefined
  const requestRuntime = (session: SessionService): Runtime.Runtime<RequestServices> => {
    base ??= runtime.runSync(Effect.runtime<SessionStore | RedisClient>())
    return Runtime.make({ context: Context.add(base.context, Session, session), runtimeFlags: base.runtimeFlags, fiberRefs: base.fiberRefs })
  }
  // One fiber per call, interrupted if the client goes away before the response is
  // finished. Rejects with the typed error itself (squashed), never a FiberFailure.
  const runEffect = <A, E>(ctx: KoaContextLike, effect: Effect.Effect<A, E, RequestServices>): Promise<A> =>
    new Promise<A>((resolve, reject) => {
      const fiber = Runtime.runFork(requestRuntime(sessionOf(ctx)), effect)
      const res = ctx.res
      let clientGone = false
      const onClose = () => {
        if (res.writableFinished) return
        clientGone = true
        fiber.unsafeInterruptAsFork(FiberId.none)
      }
      res?.once("close", onClose)
      fiber.addObserver((exit) => {
        res?.off("close", onClose)
        if (Exit.isSuccess(exit)) resolve(exit.value)
        // Nobody is left to answer: an error Koa neither logs nor sends (expose, 499).
        else if (clientGone && Cause.isInterruptedOnly(exit.cause)) reject(new ClientClosedRequest())
        else reject(Cause.squash(exit.cause))
      })
    })
  // The hot path: the same operations, run as Promises without a fiber.
  const run = <A, E>(step: Step.Step<A, E>): Promise<A> => Step.runPromise(redis, step)

  const perRequest: PerRequest = { store, csrf, cookieSettings, run }
  const createSession = (ctx: KoaContextLike): KoaSession => new PromiseSession(ctx, perRequest)

  const sessionOf = (ctx: KoaContextLike): SessionService => {
    const existing = ctx.session
    return (existing instanceof PromiseSession ? existing : createSession(ctx)).effect
  }

  const middleware = function koaRedisSessionSets(ctx: KoaContextLike, next: () => Promise<unknown>) {
    ctx.session = createSession(ctx)
    return next()
  }

  const steps = store.steps
  const promiseStore: PromiseStore = {
    client,
    prefix: store.prefix,
    references: store.references,
    maxAge: store.maxAgeMillis,
    byteLength: store.byteLength,
    createSessionId: () => Effect.runSync(store.createSessionId),
    getSessionKey: (id) => store.getSessionKey(id),
    getReferenceKey: (field, value) => store.getReferenceKey(field, value),
    get: (id, fields) => run(steps.get(id, fields)),
    set: (id, values, maxAge) => run(steps.set(id, values, maxAge)),
    unset: (id, fields, maxAge) => run(steps.unset(id, fields, maxAge)),
    touch: (id, maxAge) => run(steps.touch(id, maxAge)),
    delete: (id) => run(steps.delete(id)),
    regenerate: (id, newId, maxAge) => run(steps.regenerate(id, newId, maxAge, { csrfSecret: csrf.newSecret() })),
    listByReference: (field, value) => run(steps.listByReference(field, value)),
    deleteByReference: (field, value) => run(steps.deleteByReference(field, value))
  }

  return Object.assign(middleware, {
    store: promiseStore,
    tokens: csrf.tokens,
    // v3 wrote these into the options object it was given, and apps read them back.
    options: Object.assign(options, {
      key,
      signed,
      httpOnly: cookieOptions["httpOnly"] as boolean,
      overwrite: cookieOptions["overwrite"] as boolean,
      maxAge: store.maxAgeMillis
    }) as KoaRedisSessionSetsOptions & ResolvedFactoryOptions,
    createSession,
    getReferenceKey: (field: string, value: SessionValue) => store.getReferenceKey(field, value),
    run: <A, E>(ctx: KoaContextLike, effect: Effect.Effect<A, E, RequestServices>): Promise<A> =>
      runEffect(ctx, effect),
    runtime,
    close: async () => {
      // run() after close() fails on the disposed runtime, as it would without the cache.
      base = undefined
      await runtime.dispose()
      if (owned) await Effect.runPromise(quit(client))
    }
  })
}

/**
 * What `run(ctx, effect)` rejects with when the client went away and the Effect
 * was interrupted. Koa does not log it (`expose`), and nobody receives the 499.
 *
 * @since 4.0.0
 * @category errors
 */
export class ClientClosedRequest extends Data.TaggedError("ClientClosedRequest")<{}> {
  readonly status = 499
  readonly expose = true
  override get message(): string {
    return "The client closed the request before the response was sent"
  }
}

type CookieOptions = Record<string, unknown>

// What every request's cookie shares: options, and signatures remembered across requests.
class CookieSettings {
  readonly signatures = new CookieSignatures()
  /** `options` unsigned: the library signs itself when it can (cached, see CookieSignatures). */
  private readonly unsigned: CookieOptions
  // The write options at the default maxAge, built once: most writes use them.
  private readonly defaultSigned: CookieOptions
  private readonly defaultUnsigned: CookieOptions

  constructor(
    readonly app: KoaAppLike,
    readonly key: string,
    readonly signed: boolean,
    readonly options: CookieOptions,
    private readonly defaultMaxAge: number
  ) {
    this.unsigned = Object.assign({}, options, { signed: false })
    this.defaultSigned = this.build(defaultMaxAge, options)
    this.defaultUnsigned = this.build(defaultMaxAge, this.unsigned)
  }

  /** Options for writing the id with `maxAge`; `signedByCookies` leaves signing to the `cookies` package. */
  writeOptions(maxAge: number, signedByCookies: boolean): CookieOptions {
    if (maxAge === this.defaultMaxAge) return signedByCookies ? this.defaultSigned : this.defaultUnsigned
    return this.build(maxAge, signedByCookies ? this.options : this.unsigned)
  }

  // Not `{ ...options, maxAge }`: V8 (Node 20) takes a slow path, about 1.3 µs, for a
  // property added after a spread.
  private build(maxAge: number, options: CookieOptions): CookieOptions {
    return { maxAge, ...options }
  }
}

// The session id's cookie, through `ctx.cookies` (so Koa's `secure`/proxy rules apply).
class KoaCookie implements SessionCookie {
  constructor(
    private readonly ctx: KoaContextLike,
    private readonly settings: CookieSettings
  ) {}

  // The options `cookies` itself passes for the `.sig` it re-signs or clears on a read.
  private static readonly resigned = Object.freeze({ signed: false })
  private static readonly cleared = Object.freeze({ path: "/", signed: false })

  // What v3's `cookies.get(key, { signed: true })` does, Set-Cookie headers included,
  // with remembered signatures.
  read(): string | undefined {
    const { app, key, signed, signatures } = this.settings
    const cookies = this.ctx.cookies
    const value = cookies.get(key)
    if (!signed || value === undefined) return value
    const sigName = `${key}.sig`
    const signature = cookies.get(sigName)
    if (!signature) return undefined
    const data = `${key}=${value}`
    const index = signatures.index(app.keys, data, signature)
    // Keys CookieSignatures does not handle (a Keygrip instance) go the `cookies` way.
    if (index === undefined) return cookies.get(key, { signed: true })
    if (index < 0) {
      cookies.set(sigName, null, KoaCookie.cleared)
      return undefined
    }
    // Signed with an older key: re-signed with the current one, so the old key can retire.
    // Like `cookies`, without an expiry: a browser-session `.sig` until the next write.
    if (index > 0) cookies.set(sigName, signatures.sign(app.keys, data)!, KoaCookie.resigned)
    return value
  }

  write(id: string, maxAge: number): void {
    const settings = this.settings
    const { app, key, signed } = settings
    const cookies = this.ctx.cookies
    // The same two headers `cookies` sends for a signed cookie, with a remembered signature.
    const signature = signed ? settings.signatures.sign(app.keys, `${key}=${id}`) : undefined
    const options = settings.writeOptions(maxAge, signed && signature === undefined)
    cookies.set(key, id, options)
    if (signature !== undefined) cookies.set(`${key}.sig`, signature, options)
  }

  clear(): void {
    this.ctx.cookies.set(this.settings.key, null, this.settings.options)
  }
}

const createOwnedClient = (redis: KoaRedisSessionSetsOptions["redis"]): Redis => {
  const client = typeof redis === "string" ? new Redis(redis) : new Redis(redis ?? {})
  // ioredis prints "Unhandled error event" without a listener (and RedisClient's own
  // listener prints the same when it is the only one); requests see RedisError instead.
  client.on("error", () => {})
  return client
}

type Runner = <A, E>(step: Step.Step<A, E>) => Promise<A>

// What every request's session shares.
interface PerRequest {
  readonly store: SessionStoreService
  readonly csrf: Csrf.Csrf
  readonly cookieSettings: CookieSettings
  readonly run: Runner
}

// A class, so the per-request cost is one small object with shared methods; the state
// (and its cookie) is created on first use, so a request that never touches the session
// costs one allocation.
class PromiseSession implements KoaSession {
  private twin: SessionService | undefined
  private created: SessionState | undefined
  private readonly run: Runner
  constructor(
    private readonly ctx: KoaContextLike,
    private readonly shared: PerRequest
  ) {
    this.run = shared.run
  }
  get state(): SessionState {
    const { store, csrf, cookieSettings } = this.shared
    return (this.created ??= new SessionState(store, csrf, new KoaCookie(this.ctx, cookieSettings)))
  }
  get effect(): SessionService {
    return (this.twin ??= Session.fromState(this.state))
  }
  getKey(): string {
    return this.state.getKey()
  }
  get(fields?: ReadonlyArray<string>) {
    return this.run(this.state.get(fields))
  }
  set(values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null) {
    return this.run(this.state.set(values, maxAge))
  }
  unset(fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null) {
    return this.run(this.state.unset(fields, maxAge))
  }
  touch(maxAge?: MaxAgeInput | null) {
    return this.run(this.state.touch(maxAge))
  }
  delete() {
    return this.run(this.state.delete())
  }
  regenerate() {
    return this.run(this.state.regenerate())
  }
  createCSRFToken(session?: Record<string, string> | null) {
    return this.run(this.state.createCSRFToken(session))
  }
  verifyCSRFToken(sessionOrToken: unknown, token?: unknown): Promise<boolean> {
    // v3: verifyCSRFToken(token) or verifyCSRFToken(session, token); a string first is the token.
    if (typeof sessionOrToken === "string" || arguments.length < 2) return this.run(this.state.verifyCSRFToken(undefined, sessionOrToken))
    const session = typeof sessionOrToken === "object" && sessionOrToken !== null ? (sessionOrToken as Record<string, string>) : undefined
    return this.run(this.state.verifyCSRFToken(session, token))
  }
}

export type { SessionStoreService }

// With @types/koa installed, Koa's `ctx.session` is a KoaSession. @types/koa is optional for
// users: the build (scripts/fix-cjs.mjs) puts a `// @ts-ignore` before this block in dist/*.d.ts,
// so where koa has no types the augmentation is dropped instead of failing with TS2665.
declare module "koa" {
  interface DefaultContext {
    /** Set by the koa-redis-session-sets middleware. */
    session: KoaSession
  }
}
