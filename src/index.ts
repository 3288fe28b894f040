/**
 * koa-redis-session-sets: Koa sessions as Redis hashes, with a Redis SET per
 * referenced field value, so every session of a user can be found and revoked.
 *
 * - default export: the v3 Promise factory `KoaRedisSessionSets(app, options)`
 * - `RedisClient`, `SessionStore`, `Session`: the Effect services and their layers
 * - `SessionSchema`: schema-typed views of sessions
 * - the typed errors
 *
 * @since 4.0.0
 */
import { koaRedisSessionSets } from "./Koa.js"

export { CSRF_SECRET_FIELD } from "./Csrf.js"
export type { Csrf, CsrfOptions } from "./Csrf.js"
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
} from "./Koa.js"
export { RedisClient } from "./RedisClient.js"
export type { RedisClientConfig, RedisClientOptions, RedisClientService, RedisClusterConfig } from "./RedisClient.js"
export { Session } from "./Session.js"
export type { SessionCookie, SessionService } from "./Session.js"
export {
  ClientClosedRequest,
  ClusterWriteConflict,
  InvalidSessionData,
  InvalidSessionId,
  RedisError,
  RedisTimeoutError,
  SessionConfigError,
  SessionDecodeError
} from "./SessionError.js"
export { SessionMetrics } from "./SessionMetrics.js"
export { SessionSchema } from "./SessionSchema.js"
export { SessionStore } from "./SessionStore.js"
export type {
  Limits,
  MaxAgeInput,
  RegenerateOptions,
  SessionData,
  SessionStoreError,
  SessionStoreOptions,
  SessionStoreService,
  SessionValue
} from "./SessionStore.js"
export { koaRedisSessionSets }
export default koaRedisSessionSets
