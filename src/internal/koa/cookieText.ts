// The session cookie's `Cookie` / `Set-Cookie` text exactly as the `cookies` package (0.9,
// Koa's) reads and writes it, without its objects: the hot path reads one cookie from the
// header and sends a signed cookie's two headers with one `setHeader`. Pure; the Koa edge
// (internal/koa/cookie.ts) decides when it may bypass `ctx.cookies`.

/** The cookie attributes `cookies`' `Cookie#toHeader` writes, in the factory's resolved form. */
export interface CookieAttributes {
  readonly path?: unknown
  readonly domain?: unknown
  readonly priority?: unknown
  readonly sameSite?: unknown
  readonly secure?: unknown
  readonly httpOnly?: unknown
  readonly partitioned?: unknown
  readonly overwrite?: unknown
}

/**
 * A cookie's header text around its `expires` and `secure` parts, computed once: `cookies`
 * writes `name=value; path; expires; domain; priority; samesite; secure; httponly; partitioned`.
 */
export interface HeaderTemplate {
  readonly beforeExpires: string
  readonly beforeSecure: string
  readonly afterSecure: string
  /** `secure` as given (`undefined`: the request's own, as `cookies` decides). */
  readonly secure: boolean | undefined
  readonly overwrite: boolean
}

// `Cookie.prototype` defaults of `cookies`: path "/", httpOnly true, the rest off.
export const headerTemplate = (attributes: CookieAttributes): HeaderTemplate => {
  const { path = "/", domain, priority, sameSite = false, httpOnly = true, partitioned = false } = attributes
  let beforeSecure = ""
  if (domain) beforeSecure += `; domain=${String(domain)}`
  if (priority) beforeSecure += `; priority=${String(priority).toLowerCase()}`
  if (sameSite) beforeSecure += `; samesite=${sameSite === true ? "strict" : String(sameSite).toLowerCase()}`
  let afterSecure = ""
  if (httpOnly) afterSecure += "; httponly"
  if (partitioned) afterSecure += "; partitioned"
  return {
    beforeExpires: path ? `; path=${String(path)}` : "",
    beforeSecure,
    afterSecure,
    secure: attributes.secure === undefined ? undefined : Boolean(attributes.secure),
    overwrite: Boolean(attributes.overwrite)
  }
}

// The last expiry text made: a second's worth of writes share one `toUTCString`.
let lastSecond = Number.NaN
let lastExpires = ""

/** `; expires=…` for a cookie written at `now` with `maxAge` ms (nothing for a 0 maxAge, as `cookies`). */
export const expiresPart = (now: number, maxAge: number): string => {
  if (!maxAge) return ""
  const at = now + maxAge
  const second = Math.floor(at / 1000)
  if (second !== lastSecond) {
    lastExpires = `; expires=${new Date(at).toUTCString()}`
    lastSecond = second
  }
  return lastExpires
}

/** One `Set-Cookie` value: `name=value` and the template's attributes. */
export const cookieHeader = (name: string, value: string, template: HeaderTemplate, expires: string, secure: boolean): string =>
  `${name}=${value}${template.beforeExpires}${expires}${template.beforeSecure}${secure ? "; secure" : ""}${template.afterSecure}`

/** `headers` with `header` for `name` added, as `cookies`' `pushCookie`: with overwrite, earlier ones for `name` go. */
export const pushHeader = (headers: Array<string>, name: string, header: string, overwrite: boolean): void => {
  if (overwrite) {
    const prefix = `${name}=`
    for (let i = headers.length - 1; i >= 0; i--) if (headers[i]!.startsWith(prefix)) headers.splice(i, 1)
  }
  headers.push(header)
}

// `cookies`' getPattern: the characters it escapes, and the pattern it builds.
const ESCAPED = /[\^$\\.*+?()[\]{}|]/g
export const cookiePattern = (name: string): RegExp => new RegExp(`(?:^|;) *${name.replace(ESCAPED, "\\$&")}=([^;]*)`)

/** The cookie's value in a `Cookie` header, as `cookies.get(name)` reads it (surrounding quotes dropped). */
export const readCookie = (header: string | undefined, pattern: RegExp): string | undefined => {
  if (!header) return undefined
  const match = pattern.exec(header)
  if (match === null) return undefined
  const value = match[1]!
  return value[0] === '"' ? value.slice(1, -1) : value
}
