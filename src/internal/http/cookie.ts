// The session id's cookie for @effect/platform requests: read from the request's Cookie
// header the way the `cookies` package reads it, signed the keygrip way (so Koa and
// Effect apps with the same keys share sessions), and written as the very Set-Cookie
// lines `cookies` sends, collected here and added to the response by the middleware.
import type { SessionCookie } from "../session/types.js"
import type { CookieSignatures } from "../signature.js"

/** The attributes every write carries (`cookieOptionsOf`'s, without `signed`/`overwrite`). */
export interface CookieAttributes {
  readonly httpOnly: boolean
  readonly sameSite: string | boolean
  readonly path: string
  readonly secure: boolean | undefined
  readonly domain: string | undefined
  readonly priority: string | undefined
  readonly partitioned: boolean | undefined
}

/** What every request's cookie shares. */
export interface HttpCookieSettings {
  readonly key: string
  readonly signed: boolean
  readonly overwrite: boolean
  readonly keys: ReadonlyArray<string | Buffer>
  readonly signatures: CookieSignatures
  readonly attributes: CookieAttributes
  /** Trust `X-Forwarded-Proto` (Koa's `app.proxy`). */
  readonly proxy: boolean
}

/** The parts of a request the cookie reads (an `HttpServerRequest` has them). */
export interface RequestLike {
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly originalUrl: string
  readonly source: unknown
}

/** One Set-Cookie line: the cookie's name and everything after `name=`. */
export interface SetCookieLine {
  readonly name: string
  readonly rest: string
}

const ESCAPE = /[-[\]{}()*+?.,\\^$|#\s]/g
const patterns = new Map<string, RegExp>()

// The `cookies` package's lookup: the first `name=value` in the header, quotes removed.
export const readCookie = (header: string | undefined, name: string): string | undefined => {
  if (!header) return undefined
  let pattern = patterns.get(name)
  if (pattern === undefined) {
    pattern = new RegExp(`(?:^|;) *${name.replace(ESCAPE, "\\$&")}=([^;]*)`)
    if (patterns.size < 100) patterns.set(name, pattern)
  }
  const match = header.match(pattern)
  if (!match) return undefined
  const value = match[1]!
  return value[0] === '"' ? value.slice(1, -1) : value
}

/** Koa's `ctx.secure`: an encrypted connection, or (with `proxy`) `X-Forwarded-Proto: https`. */
export const isSecureRequest = (request: RequestLike, proxy: boolean): boolean => {
  const source = request.source as { readonly url?: unknown; readonly socket?: { readonly encrypted?: unknown } } | undefined
  if (source?.socket?.encrypted) return true
  if (typeof source?.url === "string" && source.url.startsWith("https:")) return true
  if (request.originalUrl.startsWith("https:")) return true
  if (!proxy) return false
  const forwarded = request.headers["x-forwarded-proto"]
  return forwarded !== undefined && forwarded.split(/\s*,\s*/, 1)[0]!.trim() === "https"
}

interface LineOptions {
  readonly path?: string | undefined
  readonly expires?: Date | undefined
  readonly domain?: string | undefined
  readonly priority?: string | undefined
  readonly sameSite?: string | boolean | undefined
  readonly secure: boolean
  readonly httpOnly: boolean
  readonly partitioned?: boolean | undefined
}

// `Cookie.prototype.toHeader` of the `cookies` package, attribute for attribute.
const line = (name: string, value: string, o: LineOptions): SetCookieLine => {
  let rest = value
  if (o.path) rest += `; path=${o.path}`
  if (o.expires) rest += `; expires=${o.expires.toUTCString()}`
  if (o.domain) rest += `; domain=${o.domain}`
  if (o.priority) rest += `; priority=${o.priority.toLowerCase()}`
  if (o.sameSite) rest += `; samesite=${o.sameSite === true ? "strict" : o.sameSite.toLowerCase()}`
  if (o.secure) rest += "; secure"
  if (o.httpOnly) rest += "; httponly"
  if (o.partitioned) rest += "; partitioned"
  return { name, rest }
}

const EPOCH = new Date(0)

export class HttpCookie implements SessionCookie {
  /** The Set-Cookie lines to send, in order. */
  readonly lines: Array<SetCookieLine> = []
  private secureRequest: boolean | undefined

  constructor(
    private readonly request: RequestLike,
    private readonly settings: HttpCookieSettings
  ) {}

  private get secure(): boolean {
    return (this.secureRequest ??= isSecureRequest(this.request, this.settings.proxy))
  }

  // What `cookies.get(key, { signed: true })` does, re-signing and clearing included.
  read(): string | undefined {
    const { key, signed, keys, signatures } = this.settings
    const header = this.request.headers["cookie"]
    const value = readCookie(header, key)
    if (!signed || value === undefined) return value
    const sigName = `${key}.sig`
    const signature = readCookie(header, sigName)
    if (!signature) return undefined
    const data = `${key}=${value}`
    const index = signatures.index(keys, data, signature) ?? -1
    if (index < 0) {
      // `cookies.set(sigName, null, { path: "/", signed: false })`
      this.push(line(sigName, "", { path: "/", expires: EPOCH, secure: this.secure, httpOnly: true }), false)
      return undefined
    }
    // Signed with an older key: re-signed with the current one, without an expiry, as `cookies` does.
    if (index > 0) this.push(line(sigName, signatures.sign(keys, data)!, { path: "/", secure: this.secure, httpOnly: true }), false)
    return value
  }

  write(id: string, maxAgeMillis: number): void {
    const expires = maxAgeMillis ? new Date(Date.now() + maxAgeMillis) : undefined
    this.send(id, expires)
  }

  clear(): void {
    this.send("", EPOCH)
  }

  // `cookies.set(key, value, options)`: the cookie, then (signed) its `.sig` over `key=value`.
  private send(value: string, expires: Date | undefined): void {
    const { key, signed, keys, signatures, attributes: a, overwrite } = this.settings
    const options: LineOptions = {
      path: a.path,
      expires,
      domain: a.domain,
      priority: a.priority,
      sameSite: a.sameSite,
      secure: a.secure ?? this.secure,
      httpOnly: a.httpOnly,
      partitioned: a.partitioned
    }
    this.push(line(key, value, options), overwrite)
    if (signed) this.push(line(`${key}.sig`, signatures.sign(keys, `${key}=${value}`)!, options), overwrite)
  }

  // `pushCookie`: with `overwrite`, earlier lines of the same name are dropped.
  private push(next: SetCookieLine, overwrite: boolean): void {
    if (overwrite) {
      for (let i = this.lines.length - 1; i >= 0; i--) if (this.lines[i]!.name === next.name) this.lines.splice(i, 1)
    }
    this.lines.push(next)
  }
}
