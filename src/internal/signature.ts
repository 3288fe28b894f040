import { createHmac, timingSafeEqual } from "node:crypto"

// Koa's signed cookies (`name=value` HMAC'd with `app.keys`, the keygrip way: SHA-1,
// base64url), verified and signed without keygrip. Its comparison draws fresh random
// bytes for every check, the largest single cost of reading a signed session cookie,
// and its signing computes an HMAC per write. Signatures that verified, and those made
// with the current key, are remembered (bounded), so a returning client costs a Map
// lookup either way. Only arrays of string/Buffer keys are handled; anything else (a
// Keygrip instance with another algorithm, say) is left to the `cookies` package.

const CACHE_LIMIT = 10_000

const hmac = (key: string | Buffer, data: string): string => createHmac("sha1", key).update(data).digest("base64url")

const remember = <V>(cache: Map<string, V>, key: string, value: V): void => {
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!)
  cache.set(key, value)
}

export class CookieSignatures {
  private readonly verified = new Map<string, true>()
  private readonly signatures = new Map<string, string>()
  private keys: ReadonlyArray<string | Buffer> = []

  /** `true`/`false`, or `undefined` when these keys are not ones this class handles. */
  verify(keys: unknown, data: string, signature: string): boolean | undefined {
    if (!this.sameKeys(keys)) return undefined
    const entry = `${data}\u0000${signature}`
    if (this.verified.has(entry)) return true
    const given = Buffer.from(signature)
    for (const key of this.keys) {
      const expected = Buffer.from(hmac(key, data))
      if (expected.length === given.length && timingSafeEqual(expected, given)) {
        remember(this.verified, entry, true)
        return true
      }
    }
    return false
  }

  /** The signature of `data` with the first key (what `cookies` would send), or `undefined` for keys this class does not handle. */
  sign(keys: unknown, data: string): string | undefined {
    if (!this.sameKeys(keys)) return undefined
    let signature = this.signatures.get(data)
    if (signature === undefined) {
      signature = hmac(this.keys[0]!, data)
      remember(this.signatures, data, signature)
    }
    return signature
  }

  // Keys rotate by assigning or editing `app.keys`: any change forgets everything.
  private sameKeys(keys: unknown): boolean {
    if (!Array.isArray(keys) || keys.length === 0) return false
    if (keys.length === this.keys.length && keys.every((key, i) => key === this.keys[i])) return true
    if (!keys.every((key) => typeof key === "string" || Buffer.isBuffer(key))) return false
    this.keys = [...(keys as ReadonlyArray<string | Buffer>)]
    this.verified.clear()
    this.signatures.clear()
    return true
  }
}
