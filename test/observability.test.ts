// Spans and metrics (issue 12, points 4 and 5): every store operation run as an Effect
// is a span with the store's attributes, a Session's operations are spans with the store
// operations under them, run() inside Koa sees the caller's spans, and no span ever names
// a session id, a value or a CSRF secret. Metrics count on every path, Promise included.
import { createHmac } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Metric, Option, Redacted, Tracer } from "effect"
import type { MetricState } from "effect"
import Koa from "koa"
import { inject } from "vitest"
import * as Csrf from "../src/Csrf.js"
import koaRedisSessionSets, { Session, SessionConfigError, SessionMetrics, SessionStore } from "../src/index.js"
import type { SessionCookie } from "../src/Session.js"
import { storeLayer, uniquePrefix } from "./utils.js"

interface Recorded {
  readonly name: string
  readonly spanId: string
  readonly parent: string | undefined
  readonly kind: Tracer.SpanKind
  readonly attributes: Map<string, unknown>
  exit: Exit.Exit<unknown, unknown> | undefined
}

/** A tracer that keeps every span it is asked for. */
const makeRecorder = () => {
  const spans: Array<Recorded> = []
  let next = 0
  const tracer = Tracer.make({
    span(name, parent, context, links, startTime, kind, options) {
      const spanId = `span-${++next}`
      const recorded: Recorded = {
        name,
        spanId,
        parent: Option.match(parent, { onNone: () => undefined, onSome: (p) => p.spanId }),
        kind,
        attributes: new Map(Object.entries(options?.attributes ?? {})),
        exit: undefined
      }
      spans.push(recorded)
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId,
        traceId: "trace-1",
        parent,
        context: Context.empty(),
        get status() {
          return status
        },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end(endTime, exit) {
          status = { _tag: "Ended", startTime, endTime, exit }
          recorded.exit = exit
        },
        attribute(key, value) {
          recorded.attributes.set(key, value)
        },
        event() {},
        addLinks() {}
      }
      void context
      return span
    },
    context: (f) => f()
  })
  const named = (name: string) => spans.filter((s) => s.name === name)
  const childrenOf = (span: Recorded) => spans.filter((s) => s.parent === span.spanId).map((s) => s.name)
  return { tracer, spans, named, childrenOf }
}

const makeCookie = (initial?: string) => {
  let current = initial
  const cookie: SessionCookie = {
    read: () => initial,
    write: (id) => void (current = id),
    clear: () => void (current = undefined)
  }
  return { cookie, current: () => current }
}

/** Every span name and attribute, as one string, to search for what must not be there. */
const everything = (spans: ReadonlyArray<Recorded>) =>
  JSON.stringify(spans.map((s) => [s.name, [...s.attributes.entries()].map(([k, v]) => [k, String(v)])]))

const counter = (metric: Metric.Metric.Counter<number>, tags: Record<string, string>) =>
  Effect.map(
    Metric.value(Object.entries(tags).reduce((m, [k, v]) => Metric.tagged(m, k, v), metric)),
    (state: MetricState.MetricState.Counter<number>) => state.count
  )

const histogramCount = (tags: Record<string, string>) =>
  Effect.map(
    Metric.value(Object.entries(tags).reduce((m, [k, v]) => Metric.tagged(m, k, v), SessionMetrics.operationDuration)),
    (state) => state.count
  )

const SECRET_VALUE = "hunter2-value"

const backends = [
  { system: "redis", layer: (prefix: string) => storeLayer({ prefix, references: ["user_id"] }) },
  { system: "memory", layer: (prefix: string) => SessionStore.layerMemory({ prefix, references: ["user_id"] }) }
] as const

for (const backend of backends) {
  describe(`spans and metrics (${backend.system})`, () => {
    it.effect("SessionStore methods: one span each, named after the operation, with the store's attributes", () => {
      const recorder = makeRecorder()
      const prefix = uniquePrefix("obs")
      return Effect.gen(function* () {
        const store = yield* SessionStore
        const id = "abcdefghijklmnopqrstuv"
        yield* store.set(id, { user_id: 42, note: SECRET_VALUE })
        expect(yield* store.get(id)).toMatchObject({ note: SECRET_VALUE })
        yield* store.setExisting(id, { note: "again" })
        yield* store.touch(id)
        expect(yield* store.listByReference("user_id", 42)).toEqual([id])
        expect(yield* store.deleteByReference("user_id", 42)).toBe(1)
        // A refused input is an operation too: its span fails.
        yield* Effect.flip(store.get("bad id"))

        const names = recorder.spans.map((s) => s.name)
        expect(names).toEqual([
          "SessionStore.set",
          "SessionStore.get",
          "SessionStore.setExisting",
          "SessionStore.touch",
          "SessionStore.listByReference",
          "SessionStore.deleteByReference",
          "SessionStore.get"
        ])
        const [set] = recorder.named("SessionStore.set")
        expect(set!.kind).toBe("client")
        expect(Object.fromEntries(set!.attributes)).toMatchObject({
          "db.system.name": backend.system,
          "db.operation.name": "SessionStore.set",
          "session_store.prefix": prefix,
          "session_store.references.count": 1
        })
        if (backend.system === "redis") {
          const url = new URL(inject("redisUrl"))
          expect(set!.attributes.get("server.address")).toBe(url.hostname)
          expect(set!.attributes.get("server.port")).toBe(Number(url.port))
        } else expect(set!.attributes.has("server.address")).toBe(false)
        expect(Exit.isFailure(recorder.spans.at(-1)!.exit!)).toBe(true)
        // Spans capture no call-site stack (an Error per span): a failed one carries none.
        expect(recorder.spans.at(-1)!.attributes.has("code.stacktrace")).toBe(false)
        expect(recorder.spans.every((s) => s.exit !== undefined)).toBe(true)

        const text = everything(recorder.spans)
        expect(text).not.toContain(id)
        expect(text).not.toContain(SECRET_VALUE)
      }).pipe(Effect.provide(Layer.merge(backend.layer(prefix), Layer.setTracer(recorder.tracer))))
    })

    it.effect(
      "Session operations: Session.* spans under the request's span, the store operations under them, no id, value or CSRF secret",
      () => {
        const recorder = makeRecorder()
        const prefix = uniquePrefix("obs-session")
        return Effect.gen(function* () {
          const store = yield* SessionStore
          const csrf = Csrf.make()
          const first = makeCookie()
          const session = Session.make(store, csrf, first.cookie)
          const token = yield* Effect.gen(function* () {
            yield* session.set({ user_id: 7, note: SECRET_VALUE })
            return yield* session.createCSRFToken()
          }).pipe(Effect.withSpan("request"))
          const id = (yield* session.id)!
          const secret = (yield* store.get(id))[Csrf.CSRF_SECRET_FIELD]!
          expect(secret.length).toBeGreaterThan(0)

          // The next request carries the cookie: its `set` runs setExisting.
          const again = Session.make(store, csrf, makeCookie(id).cookie)
          yield* again.set({ note: "second" }).pipe(Effect.withSpan("request"))
          expect(yield* again.verifyCSRFToken(undefined, token)).toBe(true)

          const requests = recorder.named("request")
          expect(requests).toHaveLength(2)
          expect(recorder.childrenOf(requests[0]!)).toEqual(["Session.set", "Session.createCSRFToken"])
          const [set, setAgain] = recorder.named("Session.set")
          expect(recorder.childrenOf(set!)).toEqual(["SessionStore.set"])
          expect(recorder.childrenOf(recorder.named("Session.createCSRFToken")[0]!)).toEqual([
            "SessionStore.get",
            "SessionStore.setExisting"
          ])
          expect(recorder.childrenOf(requests[1]!)).toEqual(["Session.set"])
          expect(recorder.childrenOf(setAgain!)).toEqual(["SessionStore.setExisting"])
          expect(recorder.childrenOf(recorder.named("Session.verifyCSRFToken")[0]!)).toEqual(["SessionStore.get"])
          expect(recorder.named("Session.set")[0]!.attributes.get("db.system.name")).toBe(backend.system)
          expect(recorder.named("SessionStore.setExisting")[0]!.attributes.get("db.operation.name")).toBe("SessionStore.setExisting")

          const text = everything(recorder.spans)
          for (const forbidden of [id, SECRET_VALUE, secret, token]) expect(text).not.toContain(forbidden)
        }).pipe(Effect.provide(Layer.merge(backend.layer(prefix), Layer.setTracer(recorder.tracer))))
      }
    )

    it.effect("metrics: operations by name and outcome, durations, sessions created and revoked", () => {
      const prefix = uniquePrefix("obs-metrics")
      const system = backend.system
      const read = Effect.all({
        setOk: counter(SessionMetrics.operations, {
          "db.operation.name": "SessionStore.set",
          "db.system.name": system,
          outcome: "success"
        }),
        getOk: counter(SessionMetrics.operations, {
          "db.operation.name": "SessionStore.get",
          "db.system.name": system,
          outcome: "success"
        }),
        getFailed: counter(SessionMetrics.operations, {
          "db.operation.name": "SessionStore.get",
          "db.system.name": system,
          outcome: "failure"
        }),
        getTimed: histogramCount({ "db.operation.name": "SessionStore.get", "db.system.name": system }),
        created: counter(SessionMetrics.sessionsCreated, { "db.system.name": system }),
        revoked: counter(SessionMetrics.sessionsRevoked, { "db.system.name": system })
      })
      return Effect.gen(function* () {
        const store = yield* SessionStore
        const before = yield* read
        const session = Session.make(store, Csrf.make(), makeCookie().cookie)
        yield* session.set({ user_id: 99 })
        yield* session.get()
        yield* store.set("zyxwvutsrqponmlkjihgfe", { user_id: 99 })
        yield* store.get("zyxwvutsrqponmlkjihgfe")
        yield* Effect.flip(store.get("bad id"))
        expect(yield* store.deleteByReference("user_id", 99)).toBe(2)
        const after = yield* read
        expect({
          setOk: after.setOk - before.setOk,
          getOk: after.getOk - before.getOk,
          getFailed: after.getFailed - before.getFailed,
          getTimed: after.getTimed - before.getTimed,
          created: after.created - before.created,
          revoked: after.revoked - before.revoked
        }).toEqual({ setOk: 2, getOk: 2, getFailed: 1, getTimed: 3, created: 2, revoked: 2 })
      }).pipe(Effect.provide(backend.layer(prefix)))
    })
  })
}

describe("Koa", () => {
  // A context with a cookie jar (the session cookie and its signature), nothing else.
  const fakeCtx = (cookies?: Map<string, string>) => {
    const jar = new Map(cookies)
    const ctx = {
      cookies: {
        get: (name: string) => jar.get(name),
        set: (name: string, value: string | null) => void (value === null ? jar.delete(name) : jar.set(name, value))
      },
      req: {},
      res: undefined
    } as unknown as Koa.Context
    return { ctx, jar }
  }

  it("run(ctx, effect): Session.get is a child of the span the Effect opens, with the store's span under it", async () => {
    const app = new Koa()
    app.keys = ["k"]
    const mw = koaRedisSessionSets(app, { redis: inject("redisUrl"), prefix: uniquePrefix("obs-koa") })
    try {
      const { ctx, jar } = fakeCtx()
      await mw.createSession(ctx).set({ note: SECRET_VALUE })
      const id = (await mw.createSession(fakeCtx(jar).ctx).get())["id"]!
      const recorder = makeRecorder()
      const program = Effect.flatMap(Session, (s) => s.get()).pipe(Effect.withSpan("request"), Effect.withTracer(recorder.tracer))
      expect(await mw.run(fakeCtx(jar).ctx, program)).toMatchObject({ id, note: SECRET_VALUE })
      const [request] = recorder.named("request")
      expect(recorder.childrenOf(request!)).toEqual(["Session.get"])
      expect(recorder.childrenOf(recorder.named("Session.get")[0]!)).toEqual(["SessionStore.get"])
      expect(recorder.named("SessionStore.get")[0]!.attributes.get("db.system.name")).toBe("redis")
      const text = everything(recorder.spans)
      expect(text).not.toContain(id)
      expect(text).not.toContain(SECRET_VALUE)
    } finally {
      await mw.close()
    }
  })

  it("ctx.session (the Promise path, no fiber) counts its operations in the metrics", async () => {
    const app = new Koa()
    app.keys = ["k"]
    const mw = koaRedisSessionSets(app, { redis: inject("redisUrl"), prefix: uniquePrefix("obs-koa-metrics"), references: ["user_id"] })
    const read = () =>
      Effect.runPromise(
        Effect.all([
          counter(SessionMetrics.operations, { "db.operation.name": "SessionStore.get", "db.system.name": "redis", outcome: "success" }),
          counter(SessionMetrics.operations, {
            "db.operation.name": "SessionStore.setExisting",
            "db.system.name": "redis",
            outcome: "success"
          }),
          counter(SessionMetrics.sessionsCreated, { "db.system.name": "redis" }),
          counter(SessionMetrics.sessionsRevoked, { "db.system.name": "redis" }),
          histogramCount({ "db.operation.name": "SessionStore.get", "db.system.name": "redis" })
        ])
      )
    try {
      const before = await read()
      const { ctx, jar } = fakeCtx()
      await mw.createSession(ctx).set({ user_id: 5 })
      const next = mw.createSession(fakeCtx(jar).ctx)
      await next.get()
      await next.set({ note: "x" })
      expect(await mw.store.deleteByReference("user_id", 5)).toBe(1)
      const after = await read()
      expect(after.map((n, i) => n - before[i]!)).toEqual([1, 1, 1, 1, 1])
    } finally {
      await mw.close()
    }
  })
})

describe("opt-in session id hash on spans", () => {
  const KEY = "a span hash key of 32 characters"
  const expected = (id: string) => createHmac("sha256", KEY).update(id).digest("base64url").slice(0, 16)
  const attribute = SessionMetrics.sessionIdHashAttribute

  // Two requests of one session (a login, then a write through its cookie), a regenerate, and another session.
  const requests = Effect.gen(function* () {
    const store = yield* SessionStore
    const csrf = Csrf.make()
    const login = Session.make(store, csrf, makeCookie().cookie)
    yield* login.set({ user_id: 7, note: SECRET_VALUE }).pipe(Effect.withSpan("request"))
    const id = (yield* login.id)!
    const next = Session.make(store, csrf, makeCookie(id).cookie)
    yield* Effect.all([next.get(), next.set({ note: "again" })]).pipe(Effect.withSpan("request"))
    yield* next.regenerate.pipe(Effect.withSpan("request"))
    const regenerated = (yield* next.id)!
    yield* next.get().pipe(Effect.withSpan("request"))
    const other = Session.make(store, csrf, makeCookie().cookie)
    yield* other.set({ user_id: 8 }).pipe(Effect.withSpan("request"))
    return { id, regenerated, otherId: (yield* other.id)! }
  })

  it.effect("absent by default", () => {
    const recorder = makeRecorder()
    return Effect.gen(function* () {
      const { id } = yield* requests
      expect(recorder.spans.filter((s) => s.name.startsWith("SessionStore.")).length).toBeGreaterThan(4)
      expect(recorder.spans.some((s) => s.attributes.has(attribute))).toBe(false)
      expect(everything(recorder.spans)).not.toContain(id)
    }).pipe(
      Effect.provide(
        Layer.merge(storeLayer({ prefix: uniquePrefix("obs-hash-off"), references: ["user_id"] }), Layer.setTracer(recorder.tracer))
      )
    )
  })

  it.effect("opted in: the store spans of a session's operations carry HMAC-SHA256(key, id), 16 characters, never the id", () => {
    const recorder = makeRecorder()
    return Effect.gen(function* () {
      const { id, regenerated, otherId } = yield* requests
      const hashes = (name: string) => recorder.named(name).map((s) => s.attributes.get(attribute))
      expect(attribute).toBe("session_store.session.id_hash")
      // login: set on a minted id; next request: get and setExisting of the same id, then its regenerate.
      expect(hashes("SessionStore.set")).toEqual([expected(id), expected(otherId)])
      expect(hashes("SessionStore.get")).toEqual([expected(id), expected(regenerated)])
      expect(hashes("SessionStore.setExisting")).toEqual([expected(id)])
      expect(hashes("SessionStore.regenerate")).toEqual([expected(id)])
      expect(new Set([expected(id), expected(regenerated), expected(otherId)]).size).toBe(3)
      // Only on the store operations' spans, not on the app's or Session's.
      expect(recorder.spans.filter((s) => s.attributes.has(attribute)).every((s) => s.name.startsWith("SessionStore."))).toBe(true)
      const text = everything(recorder.spans)
      for (const forbidden of [id, regenerated, otherId, SECRET_VALUE]) expect(text).not.toContain(forbidden)
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          storeLayer({ prefix: uniquePrefix("obs-hash-on"), references: ["user_id"] }),
          Layer.setTracer(recorder.tracer),
          SessionMetrics.layerSessionIdHash(Redacted.make(KEY))
        )
      )
    )
  })

  it("a key shorter than 16 bytes is refused; without a key, one random key per process", async () => {
    expect(() => SessionMetrics.layerSessionIdHash("short")).toThrow(SessionConfigError)
    const recorder = makeRecorder()
    const run = () =>
      Effect.runPromise(
        Effect.gen(function* () {
          const store = yield* SessionStore
          const session = Session.make(store, Csrf.make(), makeCookie("abcdefghijklmnopqrstuv").cookie)
          yield* session.get()
        }).pipe(
          SessionMetrics.withSessionIdHash,
          Effect.provide(Layer.merge(storeLayer({ prefix: uniquePrefix("obs-hash-random") }), Layer.setTracer(recorder.tracer)))
        )
      )
    await run()
    await run()
    const [first, second] = recorder.named("SessionStore.get").map((s) => s.attributes.get(attribute) as string)
    expect(first).toMatch(/^[\w-]{16}$/)
    expect(second).toBe(first)
    expect(first).not.toBe(expected("abcdefghijklmnopqrstuv"))
  })
})
