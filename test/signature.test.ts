import Keygrip from "keygrip"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { CookieSignatures } from "../src/internal/signature.js"

// keygrip signs with Buffer keys too (crypto.createHmac); its types say strings only.
const grip = (keys: ReadonlyArray<string | Buffer>) => new Keygrip(keys as ReadonlyArray<string>)

describe("CookieSignatures", () => {
  it("agrees with keygrip's index (what the cookies package verifies with) on any data and key set", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 3 }), fc.string(), fc.nat(2), (keys, data, signer) => {
        const grip = new Keygrip(keys)
        const signature = new Keygrip([keys[Math.min(signer, keys.length - 1)]!]).sign(data)
        const verifier = new CookieSignatures()
        expect(verifier.index(keys, data, signature)).toBe(grip.index(data, signature))
        expect(verifier.index(keys, data, signature)).toBe(grip.index(data, signature)) // remembered
        expect(verifier.index(keys, data, `${signature}x`)).toBe(-1)
        expect(verifier.index(keys, `${data}x`, signature)).toBe(grip.index(`${data}x`, signature))
      }),
      { numRuns: 300 }
    )
  })

  it("tells which key verified: 0 for the current one, the position of an older one", () => {
    const verifier = new CookieSignatures()
    const signature = new Keygrip(["old"]).sign("session-id=abc")
    expect(verifier.index(["old"], "session-id=abc", signature)).toBe(0)
    expect(verifier.index(["new", "old"], "session-id=abc", signature)).toBe(1)
    expect(verifier.index(["new", "old"], "session-id=abc", signature)).toBe(1) // remembered
    expect(verifier.index(["newer", "new", "old"], "session-id=abc", signature)).toBe(2)
  })

  it("forgets verified signatures when the keys change", () => {
    const verifier = new CookieSignatures()
    const keys = ["old"]
    const signature = new Keygrip(["old"]).sign("session-id=abc")
    expect(verifier.index(keys, "session-id=abc", signature)).toBe(0)
    keys[0] = "new" // rotated in place
    expect(verifier.index(keys, "session-id=abc", signature)).toBe(-1)
    expect(verifier.index(["new", "old"], "session-id=abc", signature)).toBe(1)
    expect(verifier.index(["new"], "session-id=abc", signature)).toBe(-1)
  })

  it("notices a Buffer key changed in place: a retired key's signature stops verifying and signing uses the new bytes", () => {
    const key = Buffer.from("old secret")
    const keys = [key]
    const signatures = new CookieSignatures()
    const old = grip([Buffer.from("old secret")]).sign("session-id=abc")
    expect(signatures.sign(keys, "session-id=abc")).toBe(old)
    key.write("new secret") // same Buffer, same array, new bytes
    expect(signatures.sign(keys, "session-id=abc")).toBe(grip([Buffer.from("new secret")]).sign("session-id=abc"))
    key.write("old secret")
    expect(signatures.index(keys, "session-id=abc", old)).toBe(0)
    key.write("new secret")
    expect(signatures.index(keys, "session-id=abc", old)).toBe(-1)
    key.write("old secret") // and back
    expect(signatures.index(keys, "session-id=abc", old)).toBe(0)
  })

  it("follows any sequence of key edits as a fresh keygrip would (mutate, replace, push, unshift, pop, reassign)", () => {
    const keyArb = fc.oneof(
      fc.string({ minLength: 1, maxLength: 4 }),
      fc.uint8Array({ minLength: 1, maxLength: 4 }).map((bytes) => Buffer.from(bytes))
    )
    const edit = fc.oneof(
      fc.record({ op: fc.constant("mutate" as const), at: fc.nat(), byte: fc.nat(255) }),
      fc.record({ op: fc.constant("replace" as const), at: fc.nat(), key: keyArb }),
      fc.record({ op: fc.constant("push" as const), key: keyArb }),
      fc.record({ op: fc.constant("unshift" as const), key: keyArb }),
      fc.record({ op: fc.constant("pop" as const) }),
      fc.record({ op: fc.constant("reassign" as const) })
    )
    fc.assert(
      fc.property(fc.array(keyArb, { minLength: 1, maxLength: 3 }), fc.array(edit, { maxLength: 12 }), fc.string(), (initial, edits, data) => {
        // Copies: the edits write into Buffers, and fast-check reuses generated values when shrinking.
        const copy = (key: string | Buffer) => (typeof key === "string" ? key : Buffer.from(key))
        let keys = initial.map(copy)
        const signatures = new CookieSignatures()
        // Signatures made with every key ever used, so a retired one is tried too.
        const seen: Array<string> = []
        const check = () => {
          const keygrip = grip(keys)
          seen.push(keygrip.sign(data))
          expect(signatures.sign(keys, data)).toBe(keygrip.sign(data))
          for (const signature of seen) expect(signatures.index(keys, data, signature)).toBe(keygrip.index(data, signature))
        }
        check()
        for (const e of edits) {
          if (e.op === "mutate") {
            const key = keys[e.at % keys.length]
            if (Buffer.isBuffer(key)) key[e.at % key.length] = e.byte
          } else if (e.op === "replace") keys[e.at % keys.length] = copy(e.key)
          else if (e.op === "push") keys.push(copy(e.key))
          else if (e.op === "unshift") keys.unshift(copy(e.key))
          else if (e.op === "pop" && keys.length > 1) keys.pop()
          else if (e.op === "reassign") keys = [...keys]
          check()
        }
      }),
      { numRuns: 300 }
    )
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
    expect(verifier.index(new Keygrip(["k"], "sha256"), "a=b", "x")).toBeUndefined()
    expect(verifier.index(new Keygrip(["k"]), "a=b", "x")).toBeUndefined()
    expect(verifier.index([], "a=b", "x")).toBeUndefined()
    expect(verifier.index(["k", new Uint8Array([1])], "a=b", "x")).toBeUndefined()
    expect(verifier.index(undefined, "a=b", "x")).toBeUndefined()
  })
})
