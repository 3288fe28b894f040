// The session id's cookie through Koa's `ctx.cookies` (the `cookies` package), signed
// the way `cookies` signs, with signatures remembered across requests.
import type { SessionCookie } from "../session/types.js"
import { CookieSignatures } from "../signature.js"
import type { CheckedFactoryOptions } from "../options.js"
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

// What every request's cookie shares: options, and signatures remembered across requests.
export class CookieSettings {
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
