import { createHmac, timingSafeEqual } from "node:crypto"

// Verifies Koa's signed cookies (`name=value` HMAC'd with `app.keys`, the keygrip way:
// SHA-1, base64url) without keygrip's comparison, which draws fresh random bytes for
// every check — the largest single cost of reading a signed session cookie. Signatures
// that verified are remembered (bounded), so a returning client costs one Map lookup.
// Only arrays of string/Buffer keys are handled; anything else (a Keygrip instance with
// another algorithm, say) is left to the `cookies` package.

const CACHE_LIMIT = 10_000

export class SignatureVerifier {
  private readonly verified = new Map<string, true>()
  private keys: ReadonlyArray<string | Buffer> = []

  /** `true`/`false`, or `undefined` when these keys are not ones this verifier handles. */
  verify(keys: unknown, data: string, signature: string): boolean | undefined {
    if (!this.sameKeys(keys)) return undefined
    const entry = `${data}\u0000${signature}`
    if (this.verified.has(entry)) return true
    const given = Buffer.from(signature)
    for (const key of this.keys) {
      const expected = Buffer.from(createHmac("sha1", key).update(data).digest("base64url"))
      if (expected.length === given.length && timingSafeEqual(expected, given)) {
        if (this.verified.size >= CACHE_LIMIT) this.verified.delete(this.verified.keys().next().value!)
        this.verified.set(entry, true)
        return true
      }
    }
    return false
  }

  // Keys rotate by assigning or editing `app.keys`: any change forgets what was verified.
  private sameKeys(keys: unknown): boolean {
    if (!Array.isArray(keys) || keys.length === 0) return false
    if (keys.length === this.keys.length && keys.every((key, i) => key === this.keys[i])) return true
    if (!keys.every((key) => typeof key === "string" || Buffer.isBuffer(key))) return false
    this.keys = [...(keys as ReadonlyArray<string | Buffer>)]
    this.verified.clear()
    return true
  }
}
