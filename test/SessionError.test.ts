import { describe, expect, it } from "vitest"
import * as Lib from "../src/index.js"
import { ClusterWriteConflict, RedisError, RedisTimeoutError } from "../src/SessionError.js"

describe("the error family", () => {
  it("is exported from the package, one class each", () => {
    for (const name of ["RedisError", "RedisTimeoutError", "ClusterWriteConflict", "ClientClosedRequest", "InvalidSessionId", "InvalidSessionData", "SessionConfigError"]) {
      expect(typeof (Lib as Record<string, unknown>)[name], name).toBe("function")
    }
  })

  it("RedisError keeps the library's own causes whole: a timeout's millis, a cluster conflict's attempts", () => {
    const timeout = new RedisError({ operation: "SessionStore.get", cause: new RedisTimeoutError(2000) })
    expect(timeout.cause).toBeInstanceOf(RedisTimeoutError)
    expect((timeout.cause as RedisTimeoutError).millis).toBe(2000)
    const conflict = new RedisError({ operation: "SessionStore.set", cause: new ClusterWriteConflict(16) })
    expect(conflict.cause).toBeInstanceOf(ClusterWriteConflict)
    expect((conflict.cause as ClusterWriteConflict).attempts).toBe(16)
    expect(String(conflict)).toContain("SessionStore.set")
  })
})
