// `Session` over a SessionStoreService written by hand (a test double): the public
// contract is all a store has to implement, and the per-request session runs on it.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Csrf from "../src/Csrf.js"
import { Session } from "../src/Session.js"
import type { SessionCookie } from "../src/Session.js"
import type { SessionData, SessionStoreService, SessionValue } from "../src/SessionStore.js"

const makeDouble = () => {
  const sessions = new Map<string, SessionData>()
  const calls: Array<string> = []
  const strings = (values: Readonly<Record<string, SessionValue>>) =>
    Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]))
  const byValue = (field: string, value: SessionValue) =>
    [...sessions.values()].filter((s) => s[field] === String(value)).map((s) => s["id"]!)
  const store: SessionStoreService = {
    prefix: "double",
    references: ["user_id"],
    maxAgeMillis: 60_000,
    byteLength: 18,
    limits: { maxFields: 1000, maxFieldLength: 256, maxValueBytes: 65536 },
    createSessionId: Effect.succeed("double-session-id-0001"),
    getSessionKey: (id) => `double:{${id}}`,
    getReferenceKey: (field, value) => `double:${field}:{${value}}`,
    get: (id) => Effect.sync(() => (calls.push("get"), { ...sessions.get(id) })),
    set: (id, values) => Effect.sync(() => void (calls.push("set"), sessions.set(id, { ...sessions.get(id), ...strings(values), id }))),
    setExisting: (id, values) =>
      Effect.sync(() => {
        calls.push("setExisting")
        const session = sessions.get(id)
        if (session !== undefined) sessions.set(id, { ...session, ...strings(values) })
        return session !== undefined
      }),
    unset: (id, fields) =>
      Effect.sync(() => {
        const session = sessions.get(id)
        for (const field of fields) delete session?.[field]
        return session !== undefined
      }),
    touch: (id) => Effect.sync(() => sessions.has(id)),
    delete: (id) => Effect.sync(() => (calls.push("delete"), sessions.delete(id))),
    regenerate: (id, newId = `${id}-next`) =>
      Effect.sync(() => {
        calls.push("regenerate")
        const session = sessions.get(id)
        if (session === undefined) return undefined
        sessions.delete(id)
        sessions.set(newId, { ...session, id: newId })
        return newId
      }),
    listByReference: (field, value) => Effect.sync(() => byValue(field, value)),
    deleteByReference: (field, value, options) =>
      Effect.sync(() => byValue(field, value).filter((id) => id !== options?.except && sessions.delete(id)).length),
    listSessions: (field, value) => Stream.fromIterable(byValue(field, value).map((id) => ({ id }))),
    lifetime: (id) => Effect.sync(() => (sessions.has(id) ? {} : undefined))
  }
  return { store, sessions, calls }
}

const makeCookie = (initial?: string) => {
  const sent: Array<{ id: string | undefined; maxAge: number | undefined }> = []
  const cookie: SessionCookie = {
    read: () => initial,
    write: (id, maxAge) => void sent.push({ id, maxAge }),
    clear: () => void sent.push({ id: undefined, maxAge: undefined })
  }
  return { cookie, sent }
}

describe("Session over a hand-written SessionStoreService", () => {
  it.effect("creates, reads, regenerates and deletes through the double's own Effects", () =>
    Effect.gen(function* () {
      const { store, sessions, calls } = makeDouble()
      const { cookie, sent } = makeCookie()
      const session = Session.make(store, Csrf.make(), cookie)

      yield* session.set({ user_id: 7 })
      const id = (yield* session.id)!
      expect(sessions.get(id)).toEqual({ id, user_id: "7" })
      expect(yield* session.get()).toEqual({ id, user_id: "7" })
      expect(sent).toEqual([{ id, maxAge: 60_000 }])

      // A double cannot say what lifetime it kept: the cookie gets the store's maxAge.
      yield* session.regenerate
      const next = (yield* session.id)!
      expect(next).toBe(`${id}-next`)
      expect(sent.at(-1)).toEqual({ id: next, maxAge: 60_000 })
      expect(yield* store.listByReference("user_id", 7)).toEqual([next])

      yield* session.delete
      expect(sessions.size).toBe(0)
      expect(sent.at(-1)).toEqual({ id: undefined, maxAge: undefined })
      expect(calls).toEqual(["set", "get", "regenerate", "delete"])
    })
  )

  it.effect("an id from the cookie is written only while the double holds it; otherwise a fresh id is minted", () =>
    Effect.gen(function* () {
      const { store, sessions } = makeDouble()
      const { cookie } = makeCookie("a-cookie-session-id-0001")
      const session = Session.make(store, Csrf.make(), cookie)
      yield* session.set({ user_id: 1 })
      const id = (yield* session.id)!
      expect(id).not.toBe("a-cookie-session-id-0001")
      expect([...sessions.keys()]).toEqual([id])
    })
  )

  it.effect("CSRF tokens: the secret is created through the double and verifies", () =>
    Effect.gen(function* () {
      const { store } = makeDouble()
      const session = Session.make(store, Csrf.make(), makeCookie().cookie)
      const token = yield* session.createCSRFToken()
      expect(yield* session.verifyCSRFToken(undefined, token)).toBe(true)
      expect(yield* session.verifyCSRFToken(undefined, `${token}x`)).toBe(false)
    })
  )
})
