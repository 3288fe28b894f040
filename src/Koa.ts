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
import type {} from "koa"
import * as Csrf from "./Csrf.js"
import { cookieOptionsOf, CookieSettings } from "./internal/koa/cookie.js"
import type { PerRequest } from "./internal/koa/promiseSession.js"
import { PromiseSession } from "./internal/koa/promiseSession.js"
import { makePromiseStore } from "./internal/koa/promiseStore.js"
import { makeRun } from "./internal/koa/run.js"
import type {
  KoaAppLike,
  KoaContextLike,
  KoaRedisSessionSetsOptions,
  KoaSession,
  ResolvedFactoryOptions,
  SessionMiddleware
} from "./internal/koa/types.js"
import { checkFactoryOptions } from "./internal/options.js"
import type { SessionService } from "./internal/session/types.js"
import { resolveOptionValues } from "./internal/store/plan.js"
import { runPromise } from "./internal/store/run.js"
import { backendOf } from "./internal/store/service.js"
import type { SessionValue } from "./internal/store/types.js"
import { quit, RedisClient } from "./RedisClient.js"
import type { RedisClientService } from "./RedisClient.js"
import { SessionConfigError } from "./SessionError.js"
import { makeWith, SessionStore } from "./SessionStore.js"

export type {
  KoaAppLike,
  KoaContextLike,
  KoaRedisSessionSetsOptions,
  KoaSession,
  PromiseStore,
  RequestServices,
  ResolvedFactoryOptions,
  SessionMiddleware
} from "./internal/koa/types.js"

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
  const { key, signed, options: cookieOptions } = cookieOptionsOf(checked)

  const owned = options.client === undefined
  const client = options.client ?? createOwnedClient(options.redis)
  const redis: RedisClientService = RedisClient.unsafeFromClient(client, { timeout: options.timeout })
  const store = makeWith(redis, storeOptions)
  const cookieSettings = new CookieSettings(app, key, signed, cookieOptions, store.maxAgeMillis)
  const csrf = Csrf.make(options)
  const context = Context.make(RedisClient, redis).pipe(Context.add(SessionStore, store))
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

  return Object.assign(middleware, {
    store: makePromiseStore(store, client, csrf),
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
    run: effects.run,
    runtime,
    close: async () => {
      effects.forget()
      await runtime.dispose()
      if (owned) await Effect.runPromise(quit(client))
    }
  })
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
