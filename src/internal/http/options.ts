// The options of `SessionHttp.middleware/make`, checked when they are given, with the
// Koa factory's rules for the cookie and CSRF options (the same names, the same errors).
import { Redacted } from "effect"
import type { CsrfOptions } from "../../Csrf.js"
import { SessionConfigError } from "../../SessionError.js"
import { cookieOptionsOf } from "../koa/cookie.js"
import { checkFactoryOptions, checkOptionNames } from "../options.js"
import { CookieSignatures } from "../signature.js"
import type { HttpCookieSettings } from "./cookie.js"

/** A signing key: a secret string or Buffer, or a `Redacted` one. */
export type SigningKey = string | Buffer | Redacted.Redacted<string>

/**
 * Options of `SessionHttp.middleware(options)`. The cookie options are the Koa factory's
 * (same names, same defaults); `keys` plays the part of Koa's `app.keys`.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionHttpOptions extends CsrfOptions {
  /**
   * The keys that sign the cookie, newest first (Koa's `app.keys`): a cookie signed with
   * an older key is accepted and re-signed with the first. Required unless `signed: false`.
   */
  readonly keys?: ReadonlyArray<SigningKey> | Redacted.Redacted<ReadonlyArray<string>> | undefined
  /** The cookie's name. Default `"session-id"`. */
  readonly key?: string | undefined
  /** Sign the cookie (a `<key>.sig` cookie next to it, as the `cookies` package does). Default true. */
  readonly signed?: boolean | undefined
  /** Default true. */
  readonly httpOnly?: boolean | undefined
  /** Default `"lax"`; `true` means strict, `false` sends no attribute. */
  readonly sameSite?: "strict" | "lax" | "none" | boolean | undefined
  /** Default: Secure exactly when the request came over HTTPS (see `proxy`). */
  readonly secure?: boolean | undefined
  readonly domain?: string | undefined
  /** Default `"/"`. */
  readonly path?: string | undefined
  /** Replace a Set-Cookie of the same name sent earlier in the request. Default true. */
  readonly overwrite?: boolean | undefined
  readonly priority?: "low" | "medium" | "high" | undefined
  readonly partitioned?: boolean | undefined
  /** Trust `X-Forwarded-Proto` to tell HTTPS requests (Koa's `app.proxy`). Default false. */
  readonly proxy?: boolean | undefined
}

const OWN_NAMES = ["keys", "proxy"]
const SHARED_NAMES = [
  "key", "signed", "httpOnly", "sameSite", "secure", "domain", "path", "overwrite", "priority", "partitioned",
  "saltLength", "secretLength", "expires", "maxage", "secureProxy"
]

const STORE_HINT = "the store's options go to the store layer: `SessionStore.layer({ maxAge, references, prefix })`, provided to the app"
const HINTS: Readonly<Record<string, string>> = {
  maxAge: STORE_HINT,
  references: STORE_HINT,
  prefix: STORE_HINT,
  namespace: STORE_HINT,
  byteLength: STORE_HINT,
  limits: STORE_HINT,
  client: "the connection is the store layer's: provide `SessionStore.layer(options)` over `RedisClient.layer(url)`",
  redis: "the connection is the store layer's: provide `SessionStore.layer(options)` over `RedisClient.layer(url)`",
  timeout: "the connection is the store layer's: `RedisClient.layer({ ..., timeout })`"
}

const configError = (option: string, reason: string) => new SessionConfigError({ option, reason })

const HOW_TO = "pass keys: ['a long random secret'] (or Redacted secrets), or signed: false"

const unwrapKeys = (keys: unknown): ReadonlyArray<string | Buffer> | SessionConfigError | undefined => {
  if (keys === undefined) return undefined
  const list = Redacted.isRedacted(keys) ? Redacted.value(keys) : keys
  if (!Array.isArray(list)) return configError("keys", `must be an array of secrets (strings, Buffers or Redacted strings); ${HOW_TO}`)
  if (list.length === 0) return configError("keys", `is empty, so there is no key to sign the cookie with; ${HOW_TO}`)
  const out: Array<string | Buffer> = []
  for (let i = 0; i < list.length; i++) {
    const item: unknown = list[i]
    const key = Redacted.isRedacted(item) ? Redacted.value(item) : item
    if (!((typeof key === "string" && key !== "") || (Buffer.isBuffer(key) && key.length > 0))) {
      // Never echo a secret back.
      return configError("keys", `keys[${i}] must be a non-empty string, Buffer or Redacted string`)
    }
    out.push(typeof key === "string" ? key : Buffer.from(key))
  }
  return out
}

/** The checked options: the cookie's settings and the CSRF options. */
export const checkHttpOptions = (options: unknown): { readonly cookie: HttpCookieSettings; readonly csrf: CsrfOptions } | SessionConfigError => {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return configError("options", `must be an object, got ${options === null ? "null" : Array.isArray(options) ? "an array" : typeof options}`)
  }
  const given = options as Record<string, unknown>
  const unknown = checkOptionNames(given, [...OWN_NAMES, ...SHARED_NAMES], (name) => (Object.hasOwn(HINTS, name) ? HINTS[name] : undefined))
  if (unknown !== undefined) return unknown
  const proxy = given["proxy"]
  if (proxy !== undefined && typeof proxy !== "boolean") return configError("proxy", "must be true or false")
  const keys = unwrapKeys(given["keys"])
  if (keys instanceof SessionConfigError) return keys
  if (given["signed"] !== false && keys === undefined) return configError("keys", `signed cookies need keys; ${HOW_TO}`)

  const shared: Record<string, unknown> = {}
  for (const name of SHARED_NAMES) if (given[name] !== undefined) shared[name] = given[name]
  const checked = checkFactoryOptions({ keys }, shared)
  if (checked instanceof SessionConfigError) return checked
  const { key, signed, options: o } = cookieOptionsOf(checked)
  return {
    cookie: {
      key,
      signed,
      overwrite: o["overwrite"] as boolean,
      keys: keys ?? [],
      signatures: new CookieSignatures(),
      proxy: proxy === true,
      attributes: {
        httpOnly: o["httpOnly"] as boolean,
        sameSite: o["sameSite"] as string | boolean,
        path: o["path"] as string,
        secure: o["secure"] as boolean | undefined,
        domain: o["domain"] as string | undefined,
        priority: o["priority"] as string | undefined,
        partitioned: o["partitioned"] as boolean | undefined
      }
    },
    csrf: {
      saltLength: given["saltLength"] as number | undefined,
      secretLength: given["secretLength"] as number | undefined
    }
  }
}
