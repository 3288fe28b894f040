/**
 * The Koa bridge and the v3 Promise facade:
 * `const SessionMiddleware = KoaRedisSessionSets(app, options)`.
 *
 * One runtime per factory call. `ctx.session` and `SessionMiddleware.store` run the
 * store's actions as Promises (no fiber per Redis command); `run(ctx, effect)` runs an
 * Effect with the request's `Session`. Promises reject with the typed errors themselves.
 *
 * @since 4.0.0
 */
import { Context, Effect, Layer, ManagedRuntime } from "effect"
import { Redis } from "ioredis"
import type { Cluster } from "ioredis"
import type {} from "koa"
import * as Csrf from "./Csrf.js"
import { cookieOptionsOf, CookieSettings } from "./internal/koa/cookie.js"
import { checkGivenStore } from "./internal/koa/givenStore.js"
import type { PerRequest } from "./internal/koa/promiseSession.js"
import { PromiseSession } from "./internal/koa/promiseSession.js"
import { makePromiseStore } from "./internal/koa/promiseStore.js"
import { makeRun } from "./internal/koa/run.js"
import type {
  KoaAppLike,
  KoaContextLike,
  KoaRedisSessionSetsOptions,
  KoaSession,
  KoaStoreOptions,
  SessionMiddleware
} from "./internal/koa/types.js"
import { checkFactoryOptions } from "./internal/options.js"
import type { SessionService } from "./internal/session/types.js"
import { resolveOptionValues } from "./internal/store/plan.js"
import { runPromise } from "./internal/store/run.js"
import { backendOf } from "./internal/store/service.js"
import type { SessionStoreService, SessionValue } from "./internal/store/types.js"
import { quit, RedisClient } from "./RedisClient.js"
import type { RedisClientService } from "./RedisClient.js"
import { SessionConfigError } from "./SessionError.js"
import { makeWith, SessionStore } from "./SessionStore.js"

export type {
  KoaAppLike,
  KoaContextLike,
  KoaRedisSessionSetsOptions,
  KoaSession,
  KoaStoreOptions,
  PromiseStore,
  RequestServices,
  ResolvedFactoryOptions,
  SessionMiddleware
} from "./internal/koa/types.js"

/**
 * Creates the session middleware (v3's default export).
 *
 * By default the sessions live in Redis: the factory builds the store from the store's
 * options over `client` (a connection the app owns) or `redis` (one it opens and
 * `close()` quits). With `store`, they live in the store given instead, for example an
 * in-process one, with nothing else to run:
 * `koaRedisSessionSets(app, { store: Effect.runSync(SessionStore.makeMemory({ references: ["user_id"] })) })`.
 * The store's options then go to its constructor, not here (see {@link KoaStoreOptions}).
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
export function koaRedisSessionSets(app: KoaAppLike, options?: KoaRedisSessionSetsOptions): SessionMiddleware
export function koaRedisSessionSets(app: KoaAppLike, options: KoaStoreOptions): SessionMiddleware<SessionStore>
export function koaRedisSessionSets(
  app: KoaAppLike,
  options: KoaRedisSessionSetsOptions | KoaStoreOptions = {}
): SessionMiddleware<SessionStore | RedisClient> | SessionMiddleware<SessionStore> {
  // Every option is checked before anything is created (a connection included): the
  // names and the factory's own values here, the store's values by resolveOptionValues
  // (or, with `store`, which of them may not go with it).
  const checked = checkFactoryOptions(app, options)
  if (checked instanceof SessionConfigError) throw checked
  const built = options.store === undefined ? buildRedisStore(options) : givenStore(options)
  if (built instanceof SessionConfigError) throw built
  const { key, signed, options: cookieOptions } = cookieOptionsOf(checked)

  const { store, client, owned, context } = built
  const cookieSettings = new CookieSettings(app, key, signed, cookieOptions, store.maxAgeMillis)
  const csrf = Csrf.make(options)
  const runtime = ManagedRuntime.make(Layer.succeedContext(context))

  // The hot path: the store's actions, run as Promises without a fiber.
  const storeRedis = backendOf(store).redis
  const perRequest: PerRequest = { store, csrf, cookieSettings, run: (action) => runPromise(storeRedis, action) }
  const createSession = (ctx: KoaContextLike): KoaSession => new PromiseSession(ctx, perRequest)
  const sessionOf = (ctx: KoaContextLike): SessionService => {
    const existing = ctx.session
    return (existing instanceof PromiseSession ? existing : createSession(ctx)).effect
  }
  const effects = makeRun(runtime, sessionOf)

  const middleware = function koaRedisSessionSets(ctx: KoaContextLike, next: () => Promise<unknown>) {
    ctx.session = createSession(ctx)
    return next()
  }

  const sessionMiddleware = Object.assign(middleware, {
    store: makePromiseStore(store, client, csrf),
    tokens: csrf.tokens,
    // v3 wrote these into the options object it was given, and apps read them back.
    options: Object.assign(options, {
      key,
      signed,
      httpOnly: cookieOptions["httpOnly"] as boolean,
      overwrite: cookieOptions["overwrite"] as boolean,
      maxAge: store.maxAgeMillis
    }),
    createSession,
    getReferenceKey: (field: string, value: SessionValue) => store.getReferenceKey(field, value),
    run: effects.run,
    runtime,
    close: async () => {
      effects.forget()
      await runtime.dispose()
      if (owned && client !== undefined) await Effect.runPromise(quit(client))
    }
  })
  // The overloads type each call: a Redis store's middleware (client and RedisClient
  // present), or a given store's (client possibly undefined, SessionStore only).
  return sessionMiddleware as unknown as SessionMiddleware<SessionStore>
}

// The store the middleware runs on, its client (if any), whether `close()` quits that
// client, and what the runtime provides.
interface Built {
  readonly store: SessionStoreService
  readonly client: Redis | Cluster | undefined
  readonly owned: boolean
  readonly context: Context.Context<SessionStore>
}

const buildRedisStore = (options: KoaRedisSessionSetsOptions): Built | SessionConfigError => {
  const storeOptions = resolveOptionValues(options)
  if (storeOptions instanceof SessionConfigError) return storeOptions
  const client = options.client ?? createOwnedClient(options.redis)
  const redis: RedisClientService = RedisClient.unsafeFromClient(client, { timeout: options.timeout })
  const store = makeWith(redis, storeOptions)
  const context = Context.make(RedisClient, redis).pipe(Context.add(SessionStore, store))
  return { store, client, owned: options.client === undefined, context }
}

// A store given as `store`: its own client when it was built over one, never quit here;
// the runtime provides the store alone (a `RedisClient` there would claim a connection
// that a memory store does not have).
const givenStore = (options: KoaStoreOptions): Built | SessionConfigError => {
  const store = checkGivenStore(options as unknown as Readonly<Record<string, unknown>>)
  if (store instanceof SessionConfigError) return store
  return { store, client: backendOf(store).redis?.client, owned: false, context: Context.make(SessionStore, store) }
}

const createOwnedClient = (redis: KoaRedisSessionSetsOptions["redis"]): Redis => {
  const client = typeof redis === "string" ? new Redis(redis) : new Redis(redis ?? {})
  // ioredis prints "Unhandled error event" without a listener (and RedisClient's own
  // listener prints the same when it is the only one); requests see RedisError instead.
  client.on("error", () => {})
  return client
}

// With @types/koa installed, Koa's `ctx.session` is a KoaSession. @types/koa is optional for
// users: the build (scripts/fix-cjs.mjs) puts a `// @ts-ignore` before this block in dist/*.d.ts,
// so where koa has no types the augmentation is dropped instead of failing with TS2665.
declare module "koa" {
  interface DefaultContext {
    /** Set by the koa-redis-session-sets middleware. */
    session: KoaSession
  }
}
