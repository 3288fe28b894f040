// examples/http-server.mjs as a real process, over real HTTP, after a build: the package
// names (`koa-redis-session-sets`, `koa-redis-session-sets/http`) resolve to dist/.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import { Browser } from "./koaUtils.js"
import { redisUrl } from "./utils.js"

const root = join(import.meta.dirname, "..")
const newestSource = () => Math.max(...readdirSync(join(root, "src"), { recursive: true }).map((f) => statSync(join(root, "src", String(f))).mtimeMs))

beforeAll(() => {
  const built = join(root, "dist", "http.js")
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource()) {
    execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" })
  }
}, 120_000)

const children: Array<ChildProcess> = []
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode !== null || child.pid === undefined) continue
    const exited = new Promise((resolve) => child.once("exit", resolve))
    process.kill(child.pid, "SIGTERM")
    await exited
  }
})

/** Starts the example on a free port; resolves with its base URL and everything it printed. */
const start = (env: Record<string, string>) =>
  new Promise<{ url: string; output: () => string }>((resolve, reject) => {
    const base: Record<string, string | undefined> = { ...process.env, PORT: "0", COOKIE_SECRET: "example secret" }
    delete base["REDIS_URL"]
    const child = spawn(process.execPath, ["examples/http-server.mjs"], { cwd: root, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    children.push(child)
    let output = ""
    const timer = setTimeout(() => reject(new Error(`no "listening" line: ${output}`)), 20_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = output.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
      if (match) {
        clearTimeout(timer)
        resolve({ url: match[1]!, output: () => output })
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.once("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)))
  })

describe("node examples/http-server.mjs", () => {
  it("with REDIS_URL: login, me, logout, logout-everywhere; prints the Redis address without credentials", async () => {
    const url = new URL(redisUrl())
    url.username = "default"
    url.password = "s3cret-password" // the test server's default user is nopass: any password works
    const server = await start({ REDIS_URL: url.toString() })
    expect(server.output()).toContain(`sessions in Redis at ${url.hostname}:${url.port}`)
    expect(server.output()).not.toContain("s3cret")

    const phone = new Browser(server.url)
    const laptop = new Browser(server.url)
    expect((await phone.json("/me")).body).toEqual({ user_id: null })
    expect(phone.jar.size).toBe(0)
    expect((await phone.json("/login?user=alice")).body).toEqual({ user_id: "alice" })
    expect([...phone.jar.keys()].sort()).toEqual(["session-id", "session-id.sig"])
    await laptop.json("/login?user=alice")
    expect((await laptop.json("/me")).body).toEqual({ user_id: "alice" })

    const other = new Browser(server.url)
    await other.json("/login?user=bob")
    expect((await other.json("/logout")).body).toEqual({ user_id: null })
    expect(other.jar.size).toBe(0)

    expect((await phone.json("/logout-everywhere")).body).toEqual({ user_id: null, revoked: 2 })
    expect(phone.jar.size).toBe(0)
    expect((await laptop.json("/me")).body).toEqual({ user_id: null })
  })

  it("without REDIS_URL: the memory store", async () => {
    const server = await start({})
    expect(server.output()).toContain("sessions in memory store")
    const browser = new Browser(server.url)
    await browser.json("/login?user=carol")
    expect((await browser.json("/me")).body).toEqual({ user_id: "carol" })
    expect((await browser.json("/login")).status).toBe(400)
  })
})
