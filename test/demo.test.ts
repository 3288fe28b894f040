// `npm run demo` as a user runs it: without REDIS_URL on the memory store, with it on
// the test's redis-server; the URL and the store printed (never a password), a page
// served that creates no session, and Ctrl-C (SIGINT to the process group) or SIGTERM
// stopping it cleanly.
import { randomBytes } from "node:crypto"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { inject } from "vitest"
import { freePorts } from "../scripts/redis-server.mjs"
import { buildDemo, startDemo, stopDemo, type RunningDemo } from "./demoUtils.js"

const started: Array<RunningDemo> = []
const client = new Redis(inject("redisUrl"))
afterAll(async () => {
  for (const demo of started) await stopDemo(demo)
  await client.quit()
})

// The first run after a change to src/ builds dist/ (that can take a while on a busy machine).
beforeAll(() => buildDemo(), 240_000)

const npmDemo = async (env: Record<string, string>) => {
  const demo = await startDemo("npm", ["run", "demo", "--", "--port", "0"], env, { detached: true })
  started.push(demo)
  return demo
}

const signedOutPage = async (url: string) => {
  const response = await fetch(`${url}/`)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toMatch(/^text\/html/)
  expect(response.headers.getSetCookie()).toEqual([])
  expect(await response.text()).toContain("<h1>Sign in</h1>")
}

/** Signs in as a browser would (the page's token, the site's Origin); the cookies. */
const signInByFetch = async (url: string, name: string) => {
  const token = /name="_csrf" value="([^"]+)"/.exec(await (await fetch(`${url}/`)).text())![1]!
  const response = await fetch(`${url}/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { origin: url, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ _csrf: token, name })
  })
  expect(response.status).toBe(303)
  return response.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ")
}

describe("npm run demo", () => {
  it("serves on the memory store without REDIS_URL, and Ctrl-C stops it", async () => {
    const demo = await npmDemo({})
    expect(demo.output()).toContain("Sessions: memory store")
    await signedOutPage(demo.url)
    const cookie = await signInByFetch(demo.url, "grace")
    const signedIn = await (await fetch(`${demo.url}/`, { headers: { cookie } })).text()
    expect(signedIn).toContain('Signed in as <strong class="user">grace</strong>')
    expect(signedIn).toContain('<span class="badge">This device</span>')

    demo.signal("SIGINT")
    await demo.exited
    // npm re-raises the signal after its script ends; the demo itself says it stopped cleanly.
    expect(demo.output()).toMatch(/SIGINT: stopping\nStopped\.\n/)
    expect(demo.output()).not.toMatch(/Error|ERR!/)
  })

  it("serves on Redis with REDIS_URL, printing the address and never the password", async () => {
    const redis = new URL(inject("redisUrl"))
    const prefix = `t:demo-npm:${randomBytes(4).toString("hex")}`
    // The default user of the test server is `nopass`: any password is accepted.
    const withPassword = `redis://default:hunter2-not-printed@${redis.hostname}:${redis.port}`
    const demo = await npmDemo({ REDIS_URL: withPassword, DEMO_PREFIX: prefix })
    expect(demo.output()).toContain(`Sessions: Redis at ${redis.hostname}:${redis.port}\n`)
    expect(demo.output()).not.toContain("hunter2")

    await signedOutPage(demo.url)
    expect(await client.keys(`${prefix}*`)).toEqual([])

    demo.signal("SIGINT")
    await demo.exited
    expect(demo.output()).toMatch(/SIGINT: stopping\nStopped\.\n/)
  })
})

describe("the demo's sign-in form (no session before sign-in)", () => {
  it("refuses a sign-in from another site even with a valid token, and a bad token from its own pages", async () => {
    const prefix = `t:demo-sign-in:${randomBytes(4).toString("hex")}`
    const demo = await startDemo(process.execPath, ["examples/demo/server.mjs", "--port", "0"], {
      REDIS_URL: inject("redisUrl"),
      DEMO_PREFIX: prefix
    })
    started.push(demo)
    const token = /name="_csrf" value="([^"]+)"/.exec(await (await fetch(`${demo.url}/`)).text())![1]!
    const signIn = (origin: string | undefined, csrf: string) =>
      fetch(`${demo.url}/sign-in`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", ...(origin === undefined ? {} : { origin }) },
        body: new URLSearchParams({ _csrf: csrf, name: "victim" })
      })

    for (const [origin, csrf] of [
      ["http://attacker.example", token],
      [undefined, token],
      [demo.url, "0.forged"],
      [demo.url, `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`]
    ] as const) {
      const refused = await signIn(origin, csrf)
      expect(refused.status, `${origin} ${csrf}`).toBe(403)
      expect(refused.headers.getSetCookie()).toEqual([])
    }
    expect(await client.keys(`${prefix}*`)).toEqual([])

    const accepted = await signIn(demo.url, token)
    expect(accepted.status).toBe(303)
    expect(accepted.headers.getSetCookie().some((c) => c.startsWith("session-id="))).toBe(true)
    expect(await client.keys(`${prefix}*`)).not.toEqual([])

    // Signed in, the session's own token is not enough from another site either.
    const cookie = accepted.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ")
    const sessionToken = /name="_csrf" value="([^"]+)"/.exec(await (await fetch(`${demo.url}/`, { headers: { cookie } })).text())![1]!
    const signOut = (origin: string) =>
      fetch(`${demo.url}/sign-out`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie, origin, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ _csrf: sessionToken })
      })
    expect((await signOut("http://attacker.example")).status).toBe(403)
    expect(await (await fetch(`${demo.url}/`, { headers: { cookie } })).text()).toContain("Signed in as <strong")
    expect((await signOut(demo.url)).status).toBe(303)
    expect(await (await fetch(`${demo.url}/`, { headers: { cookie } })).text()).toContain("<h1>Sign in</h1>")
    await stopDemo(demo)
  })
})

describe("examples/demo/server.mjs", () => {
  it.each(["SIGINT", "SIGTERM"] as const)("exits 0 on %s, on the memory store and on Redis", async (signal) => {
    for (const env of [{}, { REDIS_URL: inject("redisUrl") }]) {
      const demo = await startDemo(process.execPath, ["examples/demo/server.mjs", "--port", "0"], env)
      started.push(demo)
      await signedOutPage(demo.url)
      demo.signal(signal)
      expect(await demo.exited).toEqual({ code: 0, signal: null })
      expect(demo.output()).toContain(`${signal}: stopping\nStopped.\n`)
    }
  })

  it("takes the port from PORT or --port (--port first), and refuses one that is not a port", async () => {
    for (const [args, env] of [
      [[], "PORT"],
      [["--port"], "--port"]
    ] as const) {
      const [port, other] = await freePorts(2)
      const demo = await startDemo(process.execPath, ["examples/demo/server.mjs", ...args, ...(args.length > 0 ? [String(port)] : [])], {
        PORT: String(env === "PORT" ? port : other)
      })
      started.push(demo)
      expect(demo.url).toBe(`http://127.0.0.1:${port}`)
      await signedOutPage(demo.url)
      await stopDemo(demo)
    }

    await expect(startDemo(process.execPath, ["examples/demo/server.mjs", "--port", "http"])).rejects.toThrow(
      /--port\/PORT must be a port number/
    )
  })
})
