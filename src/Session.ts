/**
 * The `Session` service: one per request, the Effect twin of `ctx.session`.
 *
 * It never writes on a read, never resurrects an id that no longer exists in
 * Redis (it mints a fresh one instead, checking existence in the same atomic
 * write), and never sends a malformed cookie value to Redis.
 *
 * @since 4.0.0
 */
import { Context } from "effect"
import type { Csrf } from "./Csrf.js"
import { effectView, SessionState } from "./internal/session/state.js"
import type { SessionCookie, SessionService } from "./internal/session/types.js"
import type { ClientInfo } from "./internal/store/controls.js"
import type { SessionStoreService } from "./SessionStore.js"

export type { SessionCookie, SessionDevice, SessionService } from "./internal/session/types.js"
export type { ClientInfo } from "./internal/store/controls.js"

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
  /**
   * Builds a request's session over a store and the cookie that carries the id; `client`
   * tells the request's device (read only when the store tracks it, see `track`).
   */
  static readonly make = (store: SessionStoreService, csrf: Csrf, cookie: SessionCookie, client?: () => ClientInfo): SessionService =>
    effectView(new SessionState(store, csrf, cookie, client))
}
