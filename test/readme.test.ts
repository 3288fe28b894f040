// The README's examples are these files, verbatim, and here they run against a real Redis.
import { once } from "node:events"
import { readFileSync } from "node:fs"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import { describe, expect, inject, it } from "vitest"
import { Browser } from "./koaUtils.js"

const root = new URL("..", import.meta.url)
const readme = readFileSync(new URL("README.md", root), "utf8")
const example = (name: string) => readFileSync(new URL(`examples/${name}`, root), "utf8").trimEnd()
const EXAMPLES = ["quickstart.mjs", "revoke-job.mjs", "effect-in-koa.mjs", "memory-store.mjs", "config.mjs", "typed-session.mjs", "http-server.mjs", "account-controls.mjs"]

const urlOf = async (server: Server) => {
  if (!server.listening) await once(server, "listening")
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe("README", () => {
  it("shows the example files verbatim, and lists each with how to run it", () => {
    for (const name of EXAMPLES) {
      expect(readme, name).toContain(example(name))
      expect(readme, name).toContain(`node examples/${name}`)
    }
  })

  it("the Koa quick start and the Effect revoke job work as shown", async () => {
    process.env["REDIS_URL"] = inject("redisUrl")
    process.env["PORT"] = "0"
    const quickstart = await import("../examples/quickstart.mjs")
    const { main } = await import("../examples/revoke-job.mjs")
    try {
      const url = await urlOf(quickstart.server)
      const [ann, bob] = [new Browser(url), new Browser(url)]
      expect(await (await ann.request("/")).json()).toEqual({ user_id: null })
      expect(ann.jar.size).toBe(0)
      for (const b of [ann, bob]) {
        const body = await (await b.request("/login")).json()
        // The id (a bearer credential) and the CSRF secret are never echoed.
        expect(body).toEqual({ user_id: "1" })
        expect(JSON.stringify(body)).not.toContain(b.sessionId!)
      }
      expect(await quickstart.signOutEverywhere(1)).toBe(2)
      expect(await (await ann.request("/")).json()).toEqual({ user_id: null })

      await ann.request("/login")
      await bob.request("/login")
      expect(await Effect.runPromise(main(1))).toBe(2)
      expect(await (await bob.request("/")).json()).toEqual({ user_id: null })
      await bob.request("/login")
      await bob.request("/logout")
      expect(bob.jar.get("session-id")).toBeUndefined()
    } finally {
      await new Promise((resolve) => quickstart.server.close(resolve))
      await quickstart.SessionMiddleware.close()
      await quickstart.client.quit()
    }
  })

  it("the account-controls example: two devices listed, one revoked by the other, a forged CSRF token refused", async () => {
    process.env["REDIS_URL"] = inject("redisUrl")
    process.env["PORT"] = "0"
    const example = await import("../examples/account-controls.mjs")
    try {
      const url = await urlOf(example.server)
      const laptop = new Browser(url, "Laptop/1")
      const phone = new Browser(url, "Phone/1")
      const user = `readme-${Date.now()}`
      const csrf = ((await (await laptop.request(`/login?user=${user}`)).json()) as { csrf: string }).csrf
      await phone.request(`/login?user=${user}`)
      type Listing = { sessions: Array<{ handle: string; current: boolean; userAgent: string }>; lifetime?: Record<string, number> }
      const listing = (await laptop.json<Listing>("/sessions")).body
      expect(listing.sessions.map((s) => [s.userAgent, s.current]).sort()).toEqual([["Laptop/1", true], ["Phone/1", false]])
      expect(listing.lifetime!["absoluteExpiresAt"]).toBe(listing.lifetime!["createdAt"]! + 12 * 60 * 60 * 1000)
      const post = (path: string, token: string) => laptop.request(path, { method: "POST", headers: { "x-csrf-token": token } })
      expect((await post("/sessions/revoke-others", "forged")).status).toBe(403)
      expect((await phone.json<Listing>("/sessions")).body.sessions).toHaveLength(2)
      expect(await (await post("/sessions/revoke-others", csrf)).json()).toEqual({ revoked: 1 })
      expect((await phone.json<Listing>("/sessions")).body).toEqual({ sessions: [] })
      const own = (await laptop.json<Listing>("/sessions")).body.sessions[0]!
      expect(await (await post(`/sessions/revoke?handle=${own.handle}`, csrf)).json()).toEqual({ revoked: true })
      expect(laptop.sessionId).toBeUndefined()
    } finally {
      await new Promise((resolve) => example.server.close(resolve))
      await example.SessionMiddleware.close()
      await example.client.quit()
    }
  })

  it("the Effect-in-Koa example: login, current user, sign out everywhere", async () => {
    process.env["REDIS_URL"] = inject("redisUrl")
    process.env["PORT"] = "0"
    const app = await import("../examples/effect-in-koa.mjs")
    try {
      const url = await urlOf(app.server)
      const [phone, laptop] = [new Browser(url), new Browser(url)]
      expect(await (await phone.request("/")).json()).toEqual({ user_id: null })
      expect(phone.jar.size).toBe(0)
      for (const b of [phone, laptop]) expect(await (await b.request("/login")).json()).toEqual({ user_id: "1" })
      expect(await (await laptop.request("/")).json()).toEqual({ user_id: "1" })
      expect(await (await phone.request("/logout-everywhere")).json()).toEqual({ revoked: 2 })
      expect(await (await laptop.request("/")).json()).toEqual({ user_id: null })
    } finally {
      await new Promise((resolve) => app.server.close(resolve))
      await app.SessionMiddleware.close()
      await app.client.quit()
    }
  })

  it("the memory-store example: TestClock expires one session, the revoke job deletes the other, no Redis needed", async () => {
    const { check } = await import("../examples/memory-store.mjs")
    expect(await Effect.runPromise(check)).toEqual({ live: 1, revoked: 1, left: 0 })
  })

  it("the config example: layers from the environment; a bad duration is a SessionConfigError, no REDIS_URL a ConfigError", async () => {
    const saved = { ...process.env }
    try {
      process.env["REDIS_URL"] = inject("redisUrl")
      delete process.env["SESSION_MAX_AGE"]
      delete process.env["SESSION_NAMESPACE"]
      const { main } = await import("../examples/config.mjs")
      expect(await Effect.runPromise(main)).toEqual({ prefix: "koa-redis-session-sets:myapp", maxAgeMillis: 28 * 24 * 3600_000 })
      process.env["SESSION_MAX_AGE"] = "1 month"
      const badAge = await Effect.runPromise(Effect.flip(main))
      expect(badAge._tag).toBe("SessionConfigError")
      delete process.env["SESSION_MAX_AGE"]
      delete process.env["REDIS_URL"]
      const missing = await Effect.runPromise(Effect.flip(main))
      expect(missing._tag).toBe("ConfigError")
    } finally {
      process.env = saved
    }
  })

  it("the typed-session example: typed values in and out, strings in the store, a refused value writes nothing", async () => {
    const { demo } = await import("../examples/typed-session.mjs")
    const result = await Effect.runPromise(demo)
    expect(result).toEqual({
      typed: { id: result.typed.id, user_id: 42, role: "admin" },
      stored: { id: result.typed.id, user_id: "42", role: "admin" },
      holders: 1,
      refused: "InvalidSessionData",
      after: "admin"
    })
  })
})
