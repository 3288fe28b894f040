/**
 * CSRF tokens bound to a per-session secret, with the well-kept `csrf` package
 * (the one v3 used), so tokens issued by v3 still verify.
 *
 * @since 4.0.0
 */
import Tokens from "csrf"
import { InvalidSessionData } from "./SessionError.js"

/**
 * The session field holding the CSRF secret (v3's name).
 *
 * @since 4.0.0
 * @category models
 */
export const CSRF_SECRET_FIELD = "_csrf_secret"

/**
 * Options passed to `csrf`.
 *
 * @since 4.0.0
 * @category models
 */
export interface CsrfOptions {
  /** Length of the salt in each token. Default 8. */
  readonly saltLength?: number | undefined
  /** Bytes in a new secret. Default 18. */
  readonly secretLength?: number | undefined
}

/**
 * @since 4.0.0
 * @category models
 */
export interface Csrf {
  /** The underlying `csrf` instance (v3 exposed it as `SessionMiddleware.tokens`). */
  readonly tokens: Tokens
  /** A new random secret. */
  readonly newSecret: () => string
  /** A new token for `secret`. */
  readonly create: (secret: string) => string
  /** Whether `token` was made from `secret`. Never throws: any malformed input is `false`. */
  readonly verify: (secret: unknown, token: unknown) => boolean
}

/**
 * A new random secret with the `csrf` package's default length: what
 * `store.regenerate` puts in place of a session's secret when the caller gives none.
 *
 * @since 4.0.0
 * @category constructors
 */
export const newSecret = (): string => (defaultTokens ??= new Tokens()).secretSync()

let defaultTokens: Tokens | undefined

/**
 * The secret `regenerate` gives the new id (when the session has one): `given`, else a
 * fresh one. A `given` that is not a non-empty string is refused.
 *
 * @since 4.0.0
 * @category constructors
 */
export const rotatedSecret = (given: string | undefined): string | InvalidSessionData => {
  if (given === undefined) return newSecret()
  if (typeof given !== "string" || given === "") {
    return new InvalidSessionData({ reason: "csrfSecret must be a non-empty string", field: "csrfSecret" })
  }
  return given
}

/**
 * @since 4.0.0
 * @category constructors
 */
export const make = (options: CsrfOptions = {}): Csrf => {
  const tokens = new Tokens({
    ...(options.saltLength === undefined ? {} : { saltLength: options.saltLength }),
    ...(options.secretLength === undefined ? {} : { secretLength: options.secretLength })
  })
  return {
    tokens,
    newSecret: () => tokens.secretSync(),
    create: (secret) => tokens.create(secret),
    verify: (secret, token) => {
      if (typeof secret !== "string" || secret === "" || typeof token !== "string" || token === "") return false
      try {
        return tokens.verify(secret, token)
      } catch {
        return false
      }
    }
  }
}
