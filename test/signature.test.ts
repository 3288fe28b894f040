import Keygrip from "keygrip"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { CookieSignatures } from "../src/internal/signature.js"

describe("CookieSignatures", () => {
  it("agrees with keygrip (what the cookies package signs with) on any data and key set", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 3 }), fc.string(), fc.nat(2), (keys, data, signer) => {
        const grip = new Keygrip(keys)
        const signature = new Keygrip([keys[Math.min(signer, keys.length - 1)]!]).sign(data)
        const verifier = new CookieSignatures()
        expect(verifier.verify(keys, data, signature)).toBe(grip.index(data, signature) >= 0)
        expect(verifier.verify(keys, data, signature)).toBe(true)
        expect(verifier.verify(keys, data, `${signature}x`)).toBe(false)
        expect(verifier.verify(keys, `${data}x`, signature)).toBe(grip.index(`${data}x`, signature) >= 0)
      }),
      { numRuns: 300 }
    )
  })

  it("forgets verified signatures when the keys change", () => {
    const verifier = new CookieSignatures()
    const keys = ["old"]
    const signature = new Keygrip(["old"]).sign("session-id=abc")
    expect(verifier.verify(keys, "session-id=abc", signature)).toBe(true)
    keys[0] = "new" // rotated in place
    expect(verifier.verify(keys, "session-id=abc", signature)).toBe(false)
    expect(verifier.verify(["new", "old"], "session-id=abc", signature)).toBe(true)
    expect(verifier.verify(["new"], "session-id=abc", signature)).toBe(false)
  })

  it("signs as keygrip does with the first key, and re-signs once the keys change", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 3 }), fc.string(), (keys, data) => {
        const signatures = new CookieSignatures()
        expect(signatures.sign(keys, data)).toBe(new Keygrip(keys).sign(data))
        expect(signatures.sign(keys, data)).toBe(new Keygrip(keys).sign(data))
      }),
      { numRuns: 300 }
    )
    const signatures = new CookieSignatures()
    const keys = ["old"]
    expect(signatures.sign(keys, "session-id=abc")).toBe(new Keygrip(["old"]).sign("session-id=abc"))
    keys[0] = "new" // rotated in place
    expect(signatures.sign(keys, "session-id=abc")).toBe(new Keygrip(["new"]).sign("session-id=abc"))
    expect(signatures.sign(new Keygrip(["k"]), "a=b")).toBeUndefined()
  })

  it("leaves keys it does not handle to the cookies package", () => {
    const verifier = new CookieSignatures()
    expect(verifier.verify(new Keygrip(["k"], "sha256"), "a=b", "x")).toBeUndefined()
    expect(verifier.verify([], "a=b", "x")).toBeUndefined()
    expect(verifier.verify(undefined, "a=b", "x")).toBeUndefined()
  })
})
