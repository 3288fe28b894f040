// The built package, as a v3 app (require) and an ESM app (import) load it.
import { execFileSync, spawn } from "node:child_process"
import { existsSync, readFileSync, statSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { inject } from "vitest"
import { freePort } from "../scripts/redis-server.mjs"

const root = join(import.meta.dirname, "..")
const newestSource = () => Math.max(...readdirSync(join(root, "src"), { recursive: true }).map((f) => statSync(join(root, "src", String(f))).mtimeMs))

beforeAll(() => {
  const built = join(root, "dist", "index.cjs")
  // `npm test` on a fresh clone has no dist yet; CI builds first, so this is then a no-op.
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource()) {
    execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" })
  }
}, 120_000)

const runNode = (args: Array<string>, source: string) =>
  execFileSync(process.execPath, [...args, source], { cwd: root, env: { ...process.env, REDIS_URL: inject("redisUrl") }, encoding: "utf8" })

const scenario = `
  const app = new Koa(); app.keys = ['k']
  const client = new Redis(process.env.REDIS_URL)
  const Session = factory(app, { client, prefix: 't:dist:' + process.pid, references: { user_id: {} } })
  app.use(Session)
  app.use(async (ctx) => { await ctx.session.set({ user_id: 1 }); ctx.body = await ctx.session.get() })
  const server = app.listen(0, '127.0.0.1', async () => {
    const res = await fetch('http://127.0.0.1:' + server.address().port + '/')
    const body = await res.json()
    const revoked = await Session.store.deleteByReference('user_id', 1)
    const err = await Session.store.get('bad').catch((e) => e)
    console.log(JSON.stringify({
      type: typeof factory, user: body.user_id, revoked,
      named: typeof SessionStore.layer, errorTag: err._tag, isInvalidId: err instanceof InvalidSessionId
    }))
    server.close(); await Session.close(); await client.quit()
  })
`

describe("the built package", () => {
  it("its .d.ts names none of the store's internals: the contract is the operations", () => {
    // With two entries (`.` and `./http`), shared declarations live in a chunk next to them.
    const chunks = readdirSync(join(root, "dist")).filter((f) => /^Session-.*\.d\.c?ts$/.test(f))
    for (const ext of [".d.ts", ".d.cts"]) {
      const file = `index${ext}`
      const types = [file, `http${ext}`, ...chunks.filter((f) => f.endsWith(ext))].map((f) => readFileSync(join(root, "dist", f), "utf8")).join("\n")
      for (const internal of ["SessionState", "StoreActions", "StoreRules", "Regenerated", "interface Backend", "Action<", "Step<", "SessionStoreSteps"]) {
        expect(types.includes(internal), `${file} mentions ${internal}`).toBe(false)
      }
      // …while the contract itself is there.
      expect(types).toContain("interface SessionStoreService")
    }
  })

  it("require() returns the factory itself, with the named exports on it", () => {
    const out = runNode(["-e"], `
      const factory = require('koa-redis-session-sets')
      const { SessionStore, InvalidSessionId } = require('koa-redis-session-sets')
      const Koa = require('koa'); const { Redis } = require('ioredis')
      if (factory.default !== factory) throw new Error('default is not the factory')
      ${scenario}`)
    expect(JSON.parse(out)).toEqual({ type: "function", user: "1", revoked: 1, named: "function", errorTag: "InvalidSessionId", isInvalidId: true })
  })

  it("import gives the same function as the default export, plus named exports", () => {
    const out = runNode(["--input-type=module", "-e"], `
      import factory, { SessionStore, InvalidSessionId, koaRedisSessionSets } from 'koa-redis-session-sets'
      import Koa from 'koa'; import { Redis } from 'ioredis'
      if (factory !== koaRedisSessionSets) throw new Error('default differs')
      ${scenario}`)
    expect(JSON.parse(out)).toEqual({ type: "function", user: "1", revoked: 1, named: "function", errorTag: "InvalidSessionId", isInvalidId: true })
  })
})

// The README's "Examples" table, run as it says: `node examples/<file>` from a built clone.
describe("the examples, as plain node processes", () => {
  const env = (extra: Record<string, string>) => ({ ...process.env, REDIS_URL: inject("redisUrl"), ...extra })

  it("node examples/revoke-job.mjs 42 runs the job and exits", () => {
    const out = execFileSync(process.execPath, ["examples/revoke-job.mjs", "42"], { cwd: root, env: env({}), encoding: "utf8" })
    expect(out).toMatch(/message="sessions revoked" revoked=0/)
  })

  it.each(["quickstart.mjs", "effect-in-koa.mjs"])("node examples/%s serves on PORT", async (file) => {
    const port = await freePort()
    const child = spawn(process.execPath, [`examples/${file}`], { cwd: root, env: env({ PORT: String(port) }), stdio: "ignore" })
    try {
      let body: unknown
      for (let attempt = 0; body === undefined && attempt < 100; attempt++) {
        body = await fetch(`http://127.0.0.1:${port}/`)
          .then((response) => response.json())
          .catch(() => new Promise((resolve) => setTimeout(() => resolve(undefined), 100)))
      }
      expect(body).toEqual({ user_id: null })
    } finally {
      child.kill()
    }
  })
})
