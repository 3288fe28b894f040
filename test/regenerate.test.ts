// Login hygiene (issue 10, point 2): regenerate() rotates the CSRF secret and keeps the
// session's remaining lifetime, on a single server and on the 3-master cluster; and
// delete() clears the cookie whenever the client may hold one (point 6).
import { afterAll, beforeAll, describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Cluster, Redis } from "ioredis"
import Koa from "koa"
import koaRedisSessionSets, { SessionStore } from "../src/index.js"
import type { SessionStoreService } from "../src/SessionStore.js"
import type { KoaRedisSessionSetsOptions, SessionMiddleware } from "../src/index.js"
import { Browser, type ParsedCookie, routeTo, serve, type Served } from "./koaUtils.js"
import { AnyRaw, ClusterStoreTest, expireTimes, rawAny, redisClusterNodes, redisUrl, storeLayer, uniquePrefix } from "./utils.js"

const TEN_MINUTES = 600_000
const HOUR = 3_600_000
const DAY = 24 * HOUR

type Backend = "single server" | "cluster"
const BACKENDS: ReadonlyArray<Backend> = ["single server", "cluster"]

const clients = new Map<Backend, Redis | Cluster>()
const running: Array<{ served: Served; mw: SessionMiddleware }> = []

beforeAll(async () => {
  clients.set("single server", new Redis(redisUrl()))
  const cluster = new Cluster(redisClusterNodes())
  await new Promise<void>((resolve, reject) => {
    cluster.once("ready", resolve)
    cluster.once("error", reject)
  })
  clients.set("cluster", cluster)
})

afterAll(async () => {
  for (const t of running) {
    await t.served.close()
    await t.mw.close()
  }
  for (const client of clients.values()) await client.quit()
})

type Route = (ctx: Koa.Context, mw: SessionMiddleware) => Promise<unknown> | unknown

/** A real Koa app over HTTP on `backend`; `routes` maps a path to a handler. */
const makeApp = async (backend: Backend, routes: Record<string, Route>, options: Partial<KoaRedisSessionSetsOptions> = {}) => {
  const app = new Koa()
  app.silent = true
  app.keys = ["key one"]
  const prefix = uniquePrefix("regenerate")
  const client = clients.get(backend)!
  const mw = koaRedisSessionSets(app, { client, prefix, references: { user_id: {} }, ...options })
  app.use(mw)
  app.use(routeTo(routes, mw))
  const served = await serve(app)
  running.push({ served, mw })
  return { mw, client, prefix, browser: () => new Browser(served.url), hashKey: (id: string) => `${prefix}:{${id}}` }
}

const sessionCookie = (b: Browser): ParsedCookie | undefined => b.lastSetCookies.find((c) => c.name === "session-id")

/** Milliseconds from now to a Set-Cookie's `expires` (which has a resolution of one second). */
const expiresIn = (cookie: ParsedCookie | undefined): number => Date.parse(String(cookie?.attributes["expires"])) - Date.now()

for (const backend of BACKENDS) {
  describe(`regenerate() through Koa (${backend})`, () => {
    it("a CSRF token minted before regenerate() does not verify after it; one minted after does", async () => {
      const t = await makeApp(backend, {
        "/form": (ctx) => ctx.session.createCSRFToken(),
        "/login": async (ctx) => {
          await ctx.session.regenerate()
          await ctx.session.set({ user_id: 1 })
        },
        "/verify": async (ctx) => ({ valid: await ctx.session.verifyCSRFToken(String(ctx.query["t"])) })
      })
      // The attacker's planted session: a secret and a token for it, from before the login.
      const b = t.browser()
      const before = await (await b.request("/form")).text()
      const oldId = b.sessionId!
      const oldSecret = await t.client.hget(t.hashKey(oldId), "_csrf_secret")
      expect(oldSecret).toBeTruthy()
      expect((await b.json("/verify?t=" + encodeURIComponent(before))).body).toEqual({ valid: true })

      await b.request("/login")
      const newId = b.sessionId!
      expect(newId).not.toBe(oldId)
      expect(await t.client.exists(t.hashKey(oldId))).toBe(0)
      const newSecret = await t.client.hget(t.hashKey(newId), "_csrf_secret")
      expect(newSecret).toBeTruthy()
      expect(newSecret).not.toBe(oldSecret)

      expect((await b.json("/verify?t=" + encodeURIComponent(before))).body).toEqual({ valid: false })
      const after = await (await b.request("/form")).text()
      expect(b.sessionId).toBe(newId)
      expect((await b.json("/verify?t=" + encodeURIComponent(after))).body).toEqual({ valid: true })
      expect(await t.client.hget(t.hashKey(newId), "_csrf_secret")).toBe(newSecret)
    })

    it("a session object read before regenerate() cannot make an old token verify after it", async () => {
      const t = await makeApp(backend, {
        "/form": (ctx) => ctx.session.createCSRFToken(),
        "/login": async (ctx) => {
          const session = await ctx.session.get()
          const before = await ctx.session.createCSRFToken(session)
          await ctx.session.regenerate()
          const staleBefore = await ctx.session.verifyCSRFToken(session, before)
          const after = await ctx.session.createCSRFToken(session)
          const staleAfter = await ctx.session.verifyCSRFToken(session, after)
          return { before, after, staleBefore, staleAfter, recorded: session["_csrf_secret"] }
        },
        "/verify": async (ctx) => ({ valid: await ctx.session.verifyCSRFToken(String(ctx.query["t"])) })
      })
      const b = t.browser()
      await b.request("/form")
      const oldId = b.sessionId!
      const oldSecret = await t.client.hget(t.hashKey(oldId), "_csrf_secret")
      const { body } = await b.json<{ before: string; after: string; staleBefore: boolean; staleAfter: boolean; recorded: string }>("/login")
      expect(b.sessionId).not.toBe(oldId)
      const newSecret = await t.client.hget(t.hashKey(b.sessionId!), "_csrf_secret")
      expect(newSecret).not.toBe(oldSecret)
      expect(body.staleBefore).toBe(false)
      expect(body.staleAfter).toBe(true)
      // createCSRFToken(session) brought the stale object up to date.
      expect(body.recorded).toBe(newSecret)
      expect((await b.json("/verify?t=" + encodeURIComponent(body.before))).body).toEqual({ valid: false })
      expect((await b.json("/verify?t=" + encodeURIComponent(body.after))).body).toEqual({ valid: true })
    })

    it("a 10-minute session stays a 10-minute one after regenerate(), and so does its cookie", async () => {
      const t = await makeApp(backend, {
        "/login": (ctx) => ctx.session.set({ user_id: 2, theme: "dark" }, TEN_MINUTES),
        "/regenerate": (ctx) => ctx.session.regenerate()
      })
      const b = t.browser()
      await b.request("/login")
      const oldId = b.sessionId!
      expect(expiresIn(sessionCookie(b))).toBeGreaterThan(TEN_MINUTES - 5_000)
      await b.request("/regenerate")
      const newId = b.sessionId!
      expect(newId).not.toBe(oldId)
      expect(await t.client.exists(t.hashKey(oldId))).toBe(0)
      expect(await t.client.hgetall(t.hashKey(newId))).toEqual({ id: newId, user_id: "2", theme: "dark" })
      // The session never asked for a CSRF secret: regenerate() made none.
      expect(await t.client.hexists(t.hashKey(newId), "_csrf_secret")).toBe(0)

      const ttl = await t.client.pttl(t.hashKey(newId))
      expect(ttl).toBeLessThanOrEqual(TEN_MINUTES)
      expect(ttl).toBeGreaterThan(TEN_MINUTES - 10_000)
      const cookie = sessionCookie(b)
      expect(cookie?.value).toBe(newId)
      expect(expiresIn(cookie)).toBeLessThanOrEqual(TEN_MINUTES + 1_000)
      expect(expiresIn(cookie)).toBeGreaterThan(TEN_MINUTES - 10_000)
      const sig = b.lastSetCookies.find((c) => c.name === "session-id.sig")
      expect(sig?.attributes["expires"]).toBe(cookie?.attributes["expires"])

      // The new id's reference set outlives the new hash.
      const [hashAt, setAt] = await Promise.all([
        t.client.pexpiretime(t.hashKey(newId)),
        t.client.pexpiretime(t.mw.getReferenceKey("user_id", 2))
      ])
      expect(await t.client.smembers(t.mw.getReferenceKey("user_id", 2))).toEqual([newId])
      expect(setAt).toBeGreaterThanOrEqual(hashAt)
    })
  })
}

// ---- store.regenerate, on both backends ----

const REFS = ["user_id", "team"]

const storeSuites: ReadonlyArray<readonly [Backend, Layer.Layer<SessionStore | AnyRaw, unknown>]> = [
  ["single server", Layer.merge(storeLayer({ prefix: uniquePrefix("regenerate-store"), references: REFS }), AnyRaw.standalone)],
  ["cluster", ClusterStoreTest({ prefix: uniquePrefix("regenerate-store-cluster"), references: REFS })]
]

for (const [backend, storeTest] of storeSuites) {
  layer(storeTest, { timeout: 60_000 })(`store.regenerate (${backend})`, (it) => {
    /** Absolute expiries of a session hash and of the sets of the values it holds. */
    const expiries = (store: SessionStoreService, id: string, refs: Record<string, string>) =>
      Effect.flatMap(AnyRaw, (client) =>
        expireTimes(client, [store.getSessionKey(id), ...Object.entries(refs).map(([field, value]) => store.getReferenceKey(field, value))])
      )

    it.effect("rotates the CSRF secret of a session that has one (the given one, else a fresh one) and creates none otherwise", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const id = yield* store.createSessionId
        yield* store.set(id, { user_id: 7, _csrf_secret: "the-planted-secret" })
        const fresh = yield* store.regenerate(id)
        expect(fresh).toBeDefined()
        expect(yield* store.get(id)).toEqual({})
        const rotated = (yield* store.get(fresh!))["_csrf_secret"]
        expect(rotated).toBeTruthy()
        expect(rotated).not.toBe("the-planted-secret")
        expect(rotated).toMatch(/^[A-Za-z0-9_-]{24}$/)

        const given = yield* store.regenerate(fresh!, undefined, undefined, { csrfSecret: "chosen-by-the-app" })
        expect(yield* store.get(given!)).toEqual({ id: given, user_id: "7", _csrf_secret: "chosen-by-the-app" })
        const bad = yield* Effect.flip(store.regenerate(given!, undefined, undefined, { csrfSecret: "" }))
        expect(bad._tag).toBe("InvalidSessionData")

        const plain = yield* store.createSessionId
        yield* store.set(plain, { user_id: 8 })
        const moved = yield* store.regenerate(plain, undefined, undefined, { csrfSecret: "unused" })
        expect(yield* store.get(moved!)).toEqual({ id: moved, user_id: "8" })
      })
    )

    it.effect("keeps the remaining lifetime (sets outliving the new hash); an explicit maxAge replaces it", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const id = yield* store.createSessionId
        const refs = { user_id: "9", team: "blue" }
        yield* store.set(id, { ...refs, _csrf_secret: "s" }, TEN_MINUTES)
        const [oldAt] = yield* expiries(store, id, refs)

        const kept = (yield* store.regenerate(id))!
        const [hashAt, ...setsAt] = yield* expiries(store, kept, refs)
        expect(hashAt).toBeLessThanOrEqual(oldAt!)
        expect(hashAt).toBeGreaterThan(oldAt! - 1_000)
        for (const at of setsAt) expect(at).toBeGreaterThanOrEqual(hashAt!)
        const ttl = yield* rawAny((c) => c.pttl(store.getSessionKey(kept)))
        expect(ttl).toBeLessThanOrEqual(TEN_MINUTES)
        expect(ttl).toBeGreaterThan(TEN_MINUTES - 10_000)
        for (const [field, value] of Object.entries(refs)) {
          expect(yield* rawAny((c) => c.smembers(store.getReferenceKey(field, value)))).toEqual([kept])
        }

        const hour = (yield* store.regenerate(kept, undefined, "1h"))!
        const hourTtl = yield* rawAny((c) => c.pttl(store.getSessionKey(hour)))
        expect(hourTtl).toBeLessThanOrEqual(HOUR)
        expect(hourTtl).toBeGreaterThan(HOUR - 10_000)
        const [hourAt, ...hourSetsAt] = yield* expiries(store, hour, refs)
        for (const at of hourSetsAt) expect(at).toBeGreaterThanOrEqual(hourAt!)

        // Shorter again, and kept: the sets may outlive the hash by more, never less.
        const short = (yield* store.regenerate(hour, undefined, TEN_MINUTES))!
        const again = (yield* store.regenerate(short))!
        const againTtl = yield* rawAny((c) => c.pttl(store.getSessionKey(again)))
        expect(againTtl).toBeLessThanOrEqual(TEN_MINUTES)
        expect(againTtl).toBeGreaterThan(TEN_MINUTES - 10_000)
        const [againAt, ...againSetsAt] = yield* expiries(store, again, refs)
        for (const at of againSetsAt) expect(at).toBeGreaterThanOrEqual(againAt!)
      })
    )

    it.effect("a session without a TTL (as v3 could leave) gets the store's maxAge", () =>
      Effect.gen(function* () {
        const store = yield* SessionStore
        const id = yield* store.createSessionId
        yield* store.set(id, { user_id: 10 }, TEN_MINUTES)
        yield* rawAny((c) => c.persist(store.getSessionKey(id)))
        const next = (yield* store.regenerate(id))!
        const ttl = yield* rawAny((c) => c.pttl(store.getSessionKey(next)))
        expect(ttl).toBeGreaterThan(28 * DAY - 10_000)
        const [hashAt, setAt] = yield* expiries(store, next, { user_id: "10" })
        expect(setAt).toBeGreaterThanOrEqual(hashAt!)
        // And the 10-minute one before it kept its 10 minutes (the fix under test).
        const other = yield* store.createSessionId
        yield* store.set(other, { user_id: 11 }, TEN_MINUTES)
        const moved = (yield* store.regenerate(other))!
        expect(yield* rawAny((c) => c.pttl(store.getSessionKey(moved)))).toBeLessThanOrEqual(TEN_MINUTES)
      })
    )
  })
}

// ---- delete() and the cookie (point 6) ----

const isCleared = (cookie: ParsedCookie | undefined) => cookie !== undefined && cookie.value === "" && expiresIn(cookie) < 0

for (const backend of BACKENDS) {
  describe(`delete() and the cookie (${backend})`, () => {
    it("clears the cookie whenever the request carried one or one was sent, and sends none otherwise", async () => {
      const t = await makeApp(backend, {
        "/login": (ctx) => ctx.session.set({ user_id: 3 }),
        "/get-delete": async (ctx) => {
          const before = await ctx.session.get()
          await ctx.session.delete()
          return { before }
        },
        "/delete": (ctx) => ctx.session.delete(),
        "/set-delete": async (ctx) => {
          await ctx.session.set({ user_id: 4 })
          await ctx.session.delete()
        }
      })
      const revoked = async () => {
        const b = t.browser()
        await b.request("/login")
        expect(await t.mw.store.delete(b.sessionId!)).toBe(true)
        return b
      }

      // A valid cookie whose session is gone (revoked, expired), read first: signed out all the same.
      const gone = await revoked()
      expect((await gone.json("/get-delete")).body).toEqual({ before: {} })
      expect(isCleared(sessionCookie(gone)), "cookie, gone, get → delete").toBe(true)
      // `cookies` signs the emptied value: the `.sig` is cleared by its past expiry.
      expect(expiresIn(gone.lastSetCookies.find((c) => c.name === "session-id.sig"))).toBeLessThan(0)
      expect(gone.jar.size).toBe(0)

      // The same without the get().
      const goneUnread = await revoked()
      await goneUnread.request("/delete")
      expect(isCleared(sessionCookie(goneUnread)), "cookie, gone → delete").toBe(true)

      // A live session.
      const live = t.browser()
      await live.request("/login")
      const id = live.sessionId!
      await live.request("/delete")
      expect(isCleared(sessionCookie(live)), "live → delete").toBe(true)
      expect(await t.client.exists(t.hashKey(id))).toBe(0)

      // No cookie: nothing to clear, no Set-Cookie.
      const anonymous = t.browser()
      expect((await anonymous.request("/delete")).status).toBe(204)
      expect(anonymous.lastSetCookies).toEqual([])

      // No cookie, but one sent earlier in the same request: the clearing replaces it.
      const fresh = t.browser()
      await fresh.request("/set-delete")
      expect(fresh.lastSetCookies.filter((c) => c.name === "session-id")).toHaveLength(1)
      expect(isCleared(sessionCookie(fresh)), "set → delete").toBe(true)
      expect(await t.client.smembers(t.mw.getReferenceKey("user_id", 4))).toEqual([])
    })

    it("clears a cookie whose id is malformed (never sent to Redis)", async () => {
      const routes: Record<string, Route> = {
        "/delete": (ctx) => ctx.session.delete(),
        "/get-delete": async (ctx) => {
          await ctx.session.get()
          await ctx.session.delete()
        }
      }
      const t = await makeApp(backend, routes, { signed: false })
      for (const path of ["/delete", "/get-delete"]) {
        const b = t.browser()
        b.jar.set("session-id", "bad}{*:id")
        await b.request(path)
        expect(isCleared(sessionCookie(b)), path).toBe(true)
        expect(b.jar.size).toBe(0)
      }
    })
  })
}
