/**
 * CSRF tokens bound to a per-session secret, with the well-kept `csrf` package
 * (the one v3 used), so tokens issued by v3 still verify.
 *
 * @since 4.0.0
 */
import Tokens from "csrf"

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
