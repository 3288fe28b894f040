// `ctx.session`: v3's Promise API over a request's SessionState, run without a fiber.
import type * as Csrf from "../../Csrf.js"
import { effectView, SessionState } from "../session/state.js"
import type { SessionService } from "../session/types.js"
import type { Action } from "../store/action.js"
import type { MaxAgeInput, SessionStoreService, SessionValue } from "../store/types.js"
import type { CookieSettings } from "./cookie.js"
import { KoaCookie } from "./cookie.js"
import type { KoaContextLike, KoaSession } from "./types.js"

type Runner = <A, E>(action: Action<A, E>) => Promise<A>

// What every request's session shares.
export interface PerRequest {
  readonly store: SessionStoreService
  readonly csrf: Csrf.Csrf
  readonly cookieSettings: CookieSettings
  readonly run: Runner
}

// A class, so the per-request cost is one small object with shared methods; the state
// (and its cookie) is created on first use, so a request that never touches the session
// costs one allocation.
export class PromiseSession implements KoaSession {
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
    const ctx = this.ctx
    const client = () => ({ userAgent: ctx.req.headers["user-agent"], ip: ctx.ip })
    return (this.created ??= new SessionState(store, csrf, new KoaCookie(ctx, cookieSettings), client))
  }
  get effect(): SessionService {
    return (this.twin ??= effectView(this.state))
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
  listSessions(field: string) {
    return this.run(this.state.listSessions(field))
  }
  revokeSession(handle: unknown) {
    return this.run(this.state.revokeSession(handle))
  }
  revokeOthers(field: string) {
    return this.run(this.state.revokeOthers(field))
  }
  lifetime() {
    return this.run(this.state.lifetime())
  }
  verifyCSRFToken(sessionOrToken: unknown, token?: unknown): Promise<boolean> {
    // v3: verifyCSRFToken(token) or verifyCSRFToken(session, token); a string first is the token.
    if (typeof sessionOrToken === "string" || arguments.length < 2) return this.run(this.state.verifyCSRFToken(undefined, sessionOrToken))
    const session = typeof sessionOrToken === "object" && sessionOrToken !== null ? (sessionOrToken as Record<string, string>) : undefined
    return this.run(this.state.verifyCSRFToken(session, token))
  }
}
