// The session id's cookie as Koa's `ctx.cookies` (the `cookies` package) reads and writes
// it, signed the way `cookies` signs, with signatures remembered across requests. On a
// Koa context whose `ctx.cookies` is Koa's own (built or not), the id is read from the
// `Cookie` header and written as `Set-Cookie` text directly (cookieText.ts), byte for byte
// what `cookies` would do; any other `ctx.cookies` (an app's own) is used as it is.
import type { SessionCookie } from "../session/types.js"
import { CookieSignatures } from "../signature.js"
import type { CheckedFactoryOptions } from "../options.js"
import type { HeaderTemplate } from "./cookieText.js"
import { cookieHeader, cookiePattern, expiresPart, headerTemplate, pushHeader, readCookie } from "./cookieText.js"
import type { KoaAppLike, KoaContextLike } from "./types.js"

const COOKIE_DEFAULTS = { key: "session-id", signed: true, httpOnly: true, sameSite: "lax", overwrite: true, path: "/" } as const

/** The cookie's name, whether it is signed, and the options every write passes to `cookies`. */
export const cookieOptionsOf = (checked: CheckedFactoryOptions) => {
  const key = checked.key ?? COOKIE_DEFAULTS.key
  const signed = checked.signed ?? COOKIE_DEFAULTS.signed
  const options: CookieOptions = {
    signed,
    httpOnly: checked.httpOnly ?? COOKIE_DEFAULTS.httpOnly,
    sameSite: checked.sameSite ?? COOKIE_DEFAULTS.sameSite,
    overwrite: checked.overwrite ?? COOKIE_DEFAULTS.overwrite,
    path: checked.path ?? COOKIE_DEFAULTS.path
  }
  if (checked.secure !== undefined) options["secure"] = checked.secure
  if (checked.domain !== undefined) options["domain"] = checked.domain
  // v3 passed every option to `ctx.cookies.set`: these two reach the cookie as they did.
  if (checked.priority !== undefined) options["priority"] = checked.priority
  if (checked.partitioned !== undefined) options["partitioned"] = checked.partitioned
  return { key, signed, options }
}

type CookieOptions = Record<string, unknown>

// Where Koa keeps a context's `Cookies` (a private symbol, the same for every context of
// the process's Koa) and that class: found once by building one on a throwaway context.
// Not found (not Koa, or a Koa that keeps it elsewhere): every request uses `ctx.cookies`.
interface KoaCookiesSlot {
  readonly symbol: symbol
  readonly cookiesClass: unknown
}

const findCookiesSlot = (app: KoaAppLike): KoaCookiesSlot | undefined => {
  const createContext = (app as { createContext?: unknown }).createContext
  if (typeof createContext !== "function") return undefined
  try {
    const probe = createContext.call(app, { headers: {}, socket: {} }, {}) as Record<PropertyKey, unknown>
    const cookies = probe["cookies"]
    const symbol = Object.getOwnPropertySymbols(probe).find((s) => probe[s] === cookies && s.description === "context#cookies")
    const cookiesClass = (cookies as { constructor?: unknown } | undefined)?.constructor
    return symbol === undefined || typeof cookiesClass !== "function" ? undefined : { symbol, cookiesClass }
  } catch {
    // app.keys = [] makes Koa's Cookies throw: such an app signs nothing the fast way anyway.
    return undefined
  }
}

// What every request's cookie shares: options, and signatures remembered across requests.
export class CookieSettings {
  readonly signatures = new CookieSignatures()
  readonly pattern: RegExp
  readonly signaturePattern: RegExp
  readonly template: HeaderTemplate
  private slot: KoaCookiesSlot | undefined | null = null
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
    this.pattern = cookiePattern(key)
    this.signaturePattern = cookiePattern(`${key}.sig`)
    this.template = headerTemplate(options)
  }

  /**
   * Whether `ctx` is a context of this Koa app whose `ctx.cookies` is Koa's own `Cookies`,
   * built or not yet: the cookie may then be handled as text.
   */
  koaCookies(ctx: KoaContextLike): boolean {
    if (this.slot === null) this.slot = findCookiesSlot(this.app)
    const slot = this.slot
    if (slot === undefined || Object.getPrototypeOf(ctx) !== (this.app as { context?: unknown }).context) return false
    const built = (ctx as unknown as Record<symbol, { constructor?: unknown } | undefined>)[slot.symbol]
    return built === undefined || built.constructor === slot.cookiesClass
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
export class KoaCookie implements SessionCookie {
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
    const settings = this.settings
    const { app, key, signed, signatures } = settings
    // Koa's Cookies would read this very header: read it without building one.
    const asText = settings.koaCookies(this.ctx)
    const header = asText ? this.ctx.req.headers.cookie : undefined
    const value = asText ? readCookie(header, settings.pattern) : this.ctx.cookies.get(key)
    if (!signed || value === undefined) return value
    const sigName = `${key}.sig`
    const signature = asText ? readCookie(header, settings.signaturePattern) : this.ctx.cookies.get(sigName)
    if (!signature) return undefined
    const data = `${key}=${value}`
    const index = signatures.index(app.keys, data, signature)
    if (index === 0) return value
    const cookies = this.ctx.cookies
    // Keys CookieSignatures does not handle (a Keygrip instance) go the `cookies` way.
    if (index === undefined) return cookies.get(key, { signed: true })
    if (index < 0) {
      cookies.set(sigName, null, KoaCookie.cleared)
      return undefined
    }
    // Signed with an older key: re-signed with the current one, so the old key can retire.
    // Like `cookies`, without an expiry: a browser-session `.sig` until the next write.
    cookies.set(sigName, signatures.sign(app.keys, data)!, KoaCookie.resigned)
    return value
  }

  write(id: string, maxAge: number): void {
    const settings = this.settings
    const { app, key, signed } = settings
    // The same two headers `cookies` sends for a signed cookie, with a remembered signature.
    const signature = signed ? settings.signatures.sign(app.keys, `${key}=${id}`) : undefined
    if ((!signed || signature !== undefined) && settings.koaCookies(this.ctx) && this.writeText(id, signature, maxAge)) return
    const cookies = this.ctx.cookies
    const options = settings.writeOptions(maxAge, signed && signature === undefined)
    cookies.set(key, id, options)
    if (signature !== undefined) cookies.set(`${key}.sig`, signature, options)
  }

  // What `cookies.set` does for the id (and its `.sig`), as text, with one `setHeader`.
  // False (nothing written) without Koa's `ctx.secure`, or when the response holds a
  // Set-Cookie value that is neither text nor a list (`cookies` would choke on it).
  private writeText(id: string, signature: string | undefined, maxAge: number): boolean {
    const { key, template } = this.settings
    const res = this.ctx.res
    const existing = res.getHeader("Set-Cookie")
    const requestSecure = this.ctx.secure
    if (typeof requestSecure !== "boolean") return false
    if (!(existing === undefined || typeof existing === "string" || Array.isArray(existing))) return false
    if (!requestSecure && template.secure === true) throw new Error("Cannot send secure cookie over unencrypted connection")
    const secure = template.secure ?? requestSecure
    const expires = expiresPart(Date.now(), maxAge)
    const headers = existing === undefined ? [] : typeof existing === "string" ? [existing] : existing.slice()
    pushHeader(headers, key, cookieHeader(key, id, template, expires, secure), template.overwrite)
    if (signature !== undefined) {
      const sigName = `${key}.sig`
      pushHeader(headers, sigName, cookieHeader(sigName, signature, template, expires, secure), template.overwrite)
    }
    res.setHeader("Set-Cookie", headers)
    return true
  }

  clear(): void {
    this.ctx.cookies.set(this.settings.key, null, this.settings.options)
  }
}
