import { createHmac, timingSafeEqual } from "node:crypto"

// Koa's signed cookies (`name=value` HMAC'd with `app.keys`, the keygrip way: SHA-1,
// base64url), verified and signed without keygrip. Its comparison draws fresh random
// bytes for every check, the largest single cost of reading a signed session cookie,
// and its signing computes an HMAC per write. Signatures that verified, and those made
// with the current key, are remembered (bounded), so a returning client costs a Map
// lookup either way, plus comparing `app.keys` with the keys the caches were built
// with. Only arrays of string/Buffer keys are handled; anything else (a Keygrip
// instance, say) is left to the `cookies` package.

const CACHE_LIMIT = 10_000

type Key = string | Buffer

const hmac = (key: Key, data: string): string => createHmac("sha1", key).update(data).digest("base64url")

const isKey = (key: unknown): key is Key => typeof key === "string" || Buffer.isBuffer(key)

const remember = <V>(cache: Map<string, V>, key: string, value: V): void => {
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!)
  cache.set(key, value)
}

export class CookieSignatures {
  // Which key verified each remembered signature: keys[0] or an older one.
  private readonly verified = new Map<string, number>()
  private readonly signatures = new Map<string, string>()
  // Copies of the keys the caches were built with: a Buffer in `app.keys` can change in place.
  private keys: ReadonlyArray<Key> = []

  /**
   * What keygrip's `index` answers: the position in `keys` of the key that signed
   * `data` (0 is the current key), -1 when none did, or `undefined` when these keys
   * are not ones this class handles.
   */
  index(keys: unknown, data: string, signature: string): number | undefined {
    if (!this.sameKeys(keys)) return undefined
    const entry = `${data}\u0000${signature}`
    const known = this.verified.get(entry)
    if (known !== undefined) return known
    const given = Buffer.from(signature)
    for (let i = 0; i < this.keys.length; i++) {
      const expected = Buffer.from(hmac(this.keys[i]!, data))
      if (expected.length === given.length && timingSafeEqual(expected, given)) {
        remember(this.verified, entry, i)
        return i
      }
    }
    // Failures are not remembered: anyone can send new ones.
    return -1
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

  // Keys rotate by assigning `app.keys`, editing the array, or writing into a Buffer key:
  // keys are compared by content (a few short keys per request), and any change forgets
  // everything. Equal keys in a new array keep what was remembered.
  private sameKeys(keys: unknown): boolean {
    if (!Array.isArray(keys) || keys.length === 0) return false
    if (keys.length === this.keys.length && this.unchanged(keys)) return true
    if (!keys.every(isKey)) return false
    this.keys = keys.map((key: Key) => (typeof key === "string" ? key : Buffer.from(key)))
    this.verified.clear()
    this.signatures.clear()
    return true
  }

  private unchanged(keys: ReadonlyArray<unknown>): boolean {
    const known = this.keys
    for (let i = 0; i < known.length; i++) {
      const was = known[i]!
      const key = keys[i]
      if (typeof was === "string" ? key !== was : !(Buffer.isBuffer(key) && sameBytes(was, key))) return false
    }
    return true
  }
}

// A JS loop: for short keys, several times cheaper than `Buffer#equals`, which goes through C++.
const sameBytes = (a: Buffer, b: Buffer): boolean => {
  if (a.length !== b.length) return false
  if (a.length > 64) return a.equals(b)
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
