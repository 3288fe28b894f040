// Schema-typed sessions: typed values in and out of Session, SessionStore, ctx.session and
// the v3 store, over a real redis-server and over layerMemory. Redis still holds strings
// (v3's layout); stored data that does not decode is a SessionDecodeError naming the field,
// a value the schema refuses is an InvalidSessionData and writes nothing, and neither
// error ever prints the value.
import { inspect } from "node:util"
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, layer } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Layer, Schema } from "effect"
import { Redis } from "ioredis"
import Koa from "koa"
import * as Csrf from "../src/Csrf.js"
import koaRedisSessionSets, { InvalidSessionData, Session, SessionDecodeError, SessionSchema, SessionStore } from "../src/index.js"
import type { SessionCookie, SessionMiddleware } from "../src/index.js"
import { Browser, routeTo, serve, type Served } from "./koaUtils.js"
import { Raw, redisUrl, storeLayer, uniquePrefix } from "./utils.js"

const UserSession = SessionSchema.make({
  user_id: Schema.NumberFromString,
  role: Schema.Literal("admin", "user")
})

const SECRET = "hunter2-session-value"

/** A cookie that remembers what it was sent, for a Session built by hand. */
const makeCookie = (initial?: string) => {
  const sent: Array<string | undefined> = []
  let current = initial
  const cookie: SessionCookie = {
    read: () => current,
    write: (id) => void sent.push((current = id)),
    clear: () => void sent.push((current = undefined))
  }
  return { cookie, sent }
}

/** Every printable form of a failure. */
const printedForms = (error: unknown): Record<string, string> => ({
  inspect: inspect(error, { depth: Infinity }),
  inspectHidden: inspect(error, { depth: Infinity, showHidden: true }),
  json: JSON.stringify(error),
  string: String(error),
  stack: String((error as Error).stack),
  message: (error as Error).message,
  pretty: Cause.pretty(Cause.fail(error)),
  prettyWithCauses: Cause.pretty(Cause.fail(error), { renderErrorCause: true })
})

const expectNotPrinted = (error: unknown, needle: string) => {
  for (const [form, text] of Object.entries(printedForms(error))) {
    expect(text.includes(needle), `${form} shows ${needle}:\n${text}`).toBe(false)
  }
}

describe("SessionSchema types", () => {
  it("decodes to the schemas' types, plus id", () => {
    type Decoded = SessionSchema.Type<typeof UserSession>
    expectTypeOf<Decoded>().toEqualTypeOf<{ id?: string; user_id?: number; role?: "admin" | "user" }>()
    const typed = UserSession.store(null as never)
    expectTypeOf<ReturnType<typeof typed.get>>().toEqualTypeOf<
      Effect.Effect<{ id?: string; user_id?: number; role?: "admin" | "user" }, import("../src/index.js").SessionStoreError | SessionDecodeError>
    >()
    // Some fields: only those (and id).
    expectTypeOf<Effect.Effect.Success<ReturnType<typeof typed.get<"role">>>>().toEqualTypeOf<{ id?: string; role?: "admin" | "user" }>()
    expectTypeOf<SessionSchema.Input<typeof UserSession>>().toEqualTypeOf<{
      readonly user_id?: number
      readonly role?: "admin" | "user"
    }>()
  })

  it("refuses wrong value types, undeclared fields, and schemas that do not encode to a string", () => {
    const typed = UserSession.store(null as never)
    const koa = UserSession.koa(null as never)
    const check = () => {
      // @ts-expect-error user_id is a number once decoded
      typed.set("x", { user_id: "42" })
      // @ts-expect-error role is "admin" | "user"
      typed.set("x", { role: "root" })
      // @ts-expect-error name is not declared
      typed.set("x", { name: "Ada" })
      // @ts-expect-error the reference value is encoded by the field's schema: a number
      typed.listByReference("user_id", "42")
      // @ts-expect-error only declared fields can be read
      koa.get(["name"])
      // @ts-expect-error Schema.Number encodes to a number: Redis stores strings
      SessionSchema.make({ count: Schema.Number })
      // @ts-expect-error id is the session id
      SessionSchema.make({ id: Schema.String })
      // Every string-encoded schema is fine.
      SessionSchema.make({ a: Schema.String, b: Schema.BooleanFromString, c: Schema.NumberFromString.pipe(Schema.int()) })
    }
    expect(typeof check).toBe("function")
  })

  it("refuses `id` at run time too", () => {
    expect(() => SessionSchema.make({ id: Schema.String } as never)).toThrow(/`id` is the session id/)
  })
})

describe("SessionSchema codec", () => {
  it("decode keeps declared fields and id, encode only the given fields", () => {
    expect(UserSession.decode({ id: "i", user_id: "42", role: "user", _csrf_secret: "s", name: "Ada" })).toEqual(
      Either.right({ id: "i", user_id: 42, role: "user" })
    )
    expect(UserSession.encode({ role: "admin" })).toEqual(Either.right({ role: "admin" }))
    expect(UserSession.encode({ user_id: 7, role: "user" })).toEqual(Either.right({ user_id: "7", role: "user" }))
  })

  it("an undeclared field given by an untyped caller is refused", () => {
    const result = UserSession.encode({ name: "Ada" } as never)
    expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "InvalidSessionData", field: "name" })
  })

  it("a decode failure names the field and what was expected, never the value", () => {
    const result = UserSession.decode({ user_id: "1", role: SECRET })
    expect(Either.isLeft(result)).toBe(true)
    const error = (result as Either.Left<SessionDecodeError, unknown>).left
    expect(error).toBeInstanceOf(SessionDecodeError)
    expect(error.field).toBe("role")
    expect(error.message).toBe(`Stored session field "role" could not be decoded: expected "admin" | "user"`)
    expect(error.cause).toBeUndefined()
    expectNotPrinted(error, SECRET)
  })

  it("an encode failure names the field and what was expected, never the value", () => {
    const result = UserSession.encode({ role: SECRET as never })
    const error = (result as Either.Left<InvalidSessionData, unknown>).left
    expect(error).toBeInstanceOf(InvalidSessionData)
    expect(error.field).toBe("role")
    expect(error.message).toBe(`Invalid session data in field "role": expected "admin" | "user"`)
    expectNotPrinted(error, SECRET)
  })
})

const BACKENDS = [
  ["redis-server", (prefix: string) => storeLayer({ prefix, references: ["user_id"] })],
  ["memory", (prefix: string) => SessionStore.layerMemory({ prefix, references: ["user_id"] })]
] as const

for (const [name, makeLayer] of BACKENDS) {
  layer(makeLayer(uniquePrefix("schema")))(`SessionSchema over SessionStore (${name})`, (it) => {
    it.effect("Session: typed round trip, partial writes, only declared fields and id come back", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const session = Session.make(store, Csrf.make(), makeCookie().cookie)
        const typed = UserSession.ofSession(session)
        expect(yield* typed.get()).toEqual({})

        yield* typed.set({ user_id: 42, role: "admin" })
        const id = (yield* typed.id)!
        const data = yield* typed.get()
        expectTypeOf(data).toEqualTypeOf<{ id?: string; user_id?: number; role?: "admin" | "user" }>()
        expect(data).toEqual({ id, user_id: 42, role: "admin" })

        // Redis holds strings, as v3 wrote them.
        expect(yield* store.get(id)).toEqual({ id, user_id: "42", role: "admin" })

        // Only the given fields are written.
        yield* typed.set({ role: "user" })
        expect(yield* typed.get()).toEqual({ id, user_id: 42, role: "user" })
        expect(yield* typed.get(["role"])).toEqual({ id, role: "user" })

        // Fields the schema does not declare (the app's, the CSRF secret) stay out of the typed view.
        yield* session.set({ name: "Ada" })
        yield* session.createCSRFToken()
        expect(Object.keys(yield* session.get()).sort()).toEqual(["_csrf_secret", "id", "name", "role", "user_id"])
        expect(yield* typed.get()).toEqual({ id, user_id: 42, role: "user" })

        yield* typed.unset(["role"])
        expect(yield* typed.get()).toEqual({ id, user_id: 42 })
        yield* typed.delete
        expect(yield* typed.get()).toEqual({})
      })
    )

    it.effect("Session from context: UserSession.session", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const program = Effect.gen(function* () {
          const s = yield* UserSession.session
          yield* s.set({ user_id: 7 })
          return yield* s.get()
        })
        const data = yield* Effect.provideService(program, Session, Session.make(store, Csrf.make(), makeCookie().cookie))
        expect(data).toMatchObject({ user_id: 7 })
        expect(data.role).toBeUndefined()
      })
    )

    it.effect("SessionStore: typed get/set, references by the decoded value", () =>
      Effect.gen(function* () {
        const typed = yield* UserSession.sessionStore
        const id = yield* typed.untyped.createSessionId
        const other = yield* typed.untyped.createSessionId
        yield* typed.set(id, { user_id: 99, role: "user" })
        yield* typed.set(other, { user_id: 99 })
        expect(yield* typed.get(id)).toEqual({ id, user_id: 99, role: "user" })
        expect((yield* typed.listByReference("user_id", 99)).sort()).toEqual([id, other].sort())
        // The same set as the untyped API's.
        expect((yield* typed.untyped.listByReference("user_id", "99")).sort()).toEqual([id, other].sort())
        expect(yield* typed.setExisting(id, { role: "admin" })).toBe(true)
        expect(yield* typed.get(id, ["role"])).toEqual({ id, role: "admin" })
        expect(yield* typed.deleteByReference("user_id", 99)).toBe(2)
        expect(yield* typed.get(id)).toEqual({})
      })
    )

    it.effect("stored data that does not decode: SessionDecodeError naming the field, the value nowhere in it", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const typed = UserSession.store(store)
        const id = yield* store.createSessionId
        yield* store.set(id, { user_id: "not a number", role: "admin" })
        const error = yield* Effect.flip(typed.get(id))
        expect(error).toBeInstanceOf(SessionDecodeError)
        expect(error).toMatchObject({ _tag: "SessionDecodeError", field: "user_id", expected: "NumberFromString" })
        // Reading only the fields that decode works.
        expect(yield* typed.get(id, ["role"])).toEqual({ id, role: "admin" })

        yield* store.set(id, { user_id: "1", role: SECRET })
        const exit = yield* Effect.exit(typed.get(id))
        expect(Exit.isFailure(exit)).toBe(true)
        const failure = Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)
        expect(failure).toMatchObject({ field: "role" })
        expectNotPrinted(failure, SECRET)
        expect(Cause.pretty((exit as Exit.Failure<unknown, unknown>).cause).includes(SECRET)).toBe(false)
      })
    )

    it.effect("a value the schema refuses: InvalidSessionData naming the field, nothing written", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const typed = UserSession.store(store)
        const id = yield* store.createSessionId
        yield* typed.set(id, { user_id: 1, role: "user" })
        const before = yield* store.get(id)
        // `user_id` alone would encode fine: nothing of the call is written.
        const error = yield* Effect.flip(typed.set(id, { user_id: 2, role: SECRET as never }))
        expect(error).toBeInstanceOf(InvalidSessionData)
        expect(error).toMatchObject({ field: "role" })
        expectNotPrinted(error, SECRET)
        expect(yield* store.get(id)).toEqual(before)

        // Through a Session: no session is created, no cookie sent.
        const { cookie, sent } = makeCookie()
        const session = UserSession.ofSession(Session.make(store, Csrf.make(), cookie))
        const refused = yield* Effect.flip(session.set({ user_id: Number.NaN, role: "root" as never }))
        expect(refused).toMatchObject({ _tag: "InvalidSessionData", field: "role" })
        expect(sent).toEqual([])
        expect(yield* session.id).toBeUndefined()
      })
    )
  })
}

layer(Layer.merge(storeLayer({ prefix: uniquePrefix("schema-raw"), references: ["user_id"] }), Raw.layer))(
  "SessionSchema over the raw Redis hash",
  (it) => {
    it.effect("a value written with a raw HSET that does not decode names the field", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const raw = yield* Raw
        const typed = UserSession.store(store)
        const id = yield* store.createSessionId
        yield* typed.set(id, { user_id: 5, role: "user" })
        yield* Effect.promise(() => raw.hset(store.getSessionKey(id), "role", SECRET))
        const error = yield* Effect.flip(typed.get(id))
        expect(error).toMatchObject({ _tag: "SessionDecodeError", field: "role", expected: `"admin" | "user"` })
        expectNotPrinted(error, SECRET)
      })
    )

    it.effect("an encode failure leaves the Redis hash exactly as it was", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const raw = yield* Raw
        const typed = UserSession.store(store)
        const id = yield* store.createSessionId
        yield* typed.set(id, { user_id: 5, role: "user" })
        const key = store.getSessionKey(id)
        const before = yield* Effect.promise(() => raw.hgetall(key))
        const ttlBefore = yield* Effect.promise(() => raw.pttl(key))
        expect(before).toEqual({ id, user_id: "5", role: "user" })
        const error = yield* Effect.flip(typed.set(id, { user_id: 6, role: "root" as never }, 1000))
        expect(error).toMatchObject({ _tag: "InvalidSessionData", field: "role" })
        expect(yield* Effect.promise(() => raw.hgetall(key))).toEqual(before)
        // Not even the TTL was touched (the write asked for 1 s).
        expect(yield* Effect.promise(() => raw.pttl(key))).toBeGreaterThan(ttlBefore - 60_000)
        // The reference set of the value that would have been written is still empty.
        expect(yield* Effect.promise(() => raw.exists(store.getReferenceKey("user_id", 6)))).toBe(0)
      })
    )
  }
)

describe("SessionSchema over Koa (real app over HTTP)", () => {
  let client: Redis
  let mw: SessionMiddleware
  let served: Served
  let prefix: string
  const errors: Array<unknown> = []
  beforeAll(async () => {
    client = new Redis(redisUrl())
    prefix = uniquePrefix("schema-koa")
    const app = new Koa()
    app.silent = true
    app.keys = ["schema key"]
    app.on("error", (error) => void errors.push(error))
    mw = koaRedisSessionSets(app, { client, prefix, references: { user_id: {} } })
    app.use(mw)
    app.use(
      routeTo(
        {
          "/login": async (ctx) => {
            const session = UserSession.koa(ctx.session!)
            await session.set({ user_id: 42, role: "admin" })
            await session.untyped.set({ name: "Ada" })
          },
          "/me": async (ctx) => {
            const data = await UserSession.koa(ctx.session!).get()
            expectTypeOf(data).toEqualTypeOf<{ id?: string; user_id?: number; role?: "admin" | "user" }>()
            return { user_id: data.user_id, role: data.role, hasId: typeof data.id === "string", keys: Object.keys(data).sort() }
          },
          "/demote": async (ctx) => {
            await UserSession.koa(ctx.session!).set({ role: "user" })
          },
          "/bad-write": async (ctx) => {
            try {
              await UserSession.koa(ctx.session!).set({ role: SECRET as never, user_id: 1 })
              return { refused: false }
            } catch (error) {
              return { refused: error instanceof InvalidSessionData, field: (error as InvalidSessionData).field }
            }
          },
          "/peers": async () => {
            const store = UserSession.promiseStore(mw.store)
            return { ids: await store.listByReference("user_id", 42) }
          }
        },
        mw
      )
    )
    served = await serve(app)
  })
  afterAll(async () => {
    await served?.close()
    await mw?.close()
    await client?.quit()
  })

  it("round trip through ctx.session and SessionMiddleware.store; bad stored data is a 500 naming the field", async () => {
    const browser = new Browser(served.url)
    expect((await browser.request("/login")).status).toBe(204)
    const id = browser.sessionId!.split(".")[0]!
    expect(await browser.json("/me")).toEqual({ status: 200, body: { user_id: 42, role: "admin", hasId: true, keys: ["id", "role", "user_id"] } })
    expect(await client.hgetall(`${prefix}:{${id}}`)).toEqual({ id, user_id: "42", role: "admin", name: "Ada" })

    // A refused value: the request sees the typed error, the hash is unchanged.
    expect(await browser.json("/bad-write")).toEqual({ status: 200, body: { refused: true, field: "role" } })
    expect(await client.hgetall(`${prefix}:{${id}}`)).toEqual({ id, user_id: "42", role: "admin", name: "Ada" })

    await browser.request("/demote")
    expect((await browser.json("/me")).body).toMatchObject({ user_id: 42, role: "user" })
    expect(await browser.json("/peers")).toEqual({ status: 200, body: { ids: [id] } })

    // The v3 store, typed.
    const store = UserSession.promiseStore(mw.store)
    expect(await store.get(id)).toEqual({ id, user_id: 42, role: "user" })
    await store.set(id, { role: "admin" })
    expect(await store.get(id, ["role"])).toEqual({ id, role: "admin" })
    await expect(store.set(id, { user_id: "x" as never })).rejects.toMatchObject({ _tag: "InvalidSessionData", field: "user_id" })

    // Stored data that does not decode: Koa answers 500 and the error names the field only.
    await client.hset(`${prefix}:{${id}}`, "user_id", SECRET)
    const response = await browser.request("/me")
    expect(response.status).toBe(500)
    expect(await response.text()).not.toContain(SECRET)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(SessionDecodeError)
    expect(errors[0]).toMatchObject({ field: "user_id", expected: "NumberFromString" })
    expectNotPrinted(errors[0], SECRET)
    await expect(store.get(id)).rejects.toBeInstanceOf(SessionDecodeError)
  })
})
