// The soak core, shared by `npm run soak` (scripts/soak.mjs, over the built package)
// and test/soak.test.ts (over the sources, inside `npm test`).
//
// A Koa app using the Promise facade is served on a loopback port; `clients` HTTP
// keep-alive clients, each a browser with its own cookie jar, run a random mix of
// get / set (a referenced `user_id` out of a shared pool, a second referenced
// `org_id`, plain fields) / unset / touch / delete / regenerate / login / CSRF, plus
// admin calls: deleteByReference and listByReference of a user or an org. Some writes
// use short lifetimes, so sessions also expire while the soak runs.
//
// When the time is up (and, on a cluster, after the convergence step), the checker of
// test/invariants.mjs walks every key under the prefix and reports each broken invariant.
// Ids of expired sessions may stay in sets (the README allows that); they are counted.
// The clients report what they saw: a response serving another session than the cookie
// names, a write not read back within its request, a CSRF token that did not verify.
//
// The core knows nothing of how Redis was started or where the library comes from:
// the caller passes the ioredis client (`Redis` or `Cluster`) and the factory.
import { randomBytes } from "node:crypto"
import { Agent, createServer, request } from "node:http"
import Koa from "koa"
import { checkInvariants, eachLimited, isCluster, parseKey, scanPrefix } from "../invariants.mjs"

export const REFERENCES = /** @type {const} */ (["user_id", "org_id"])
const COOKIE = "session-id"

/**
 * @typedef {import("ioredis").Redis | import("ioredis").Cluster} AnyRedis
 *
 * @typedef {object} SoakOptions
 * @property {AnyRedis} client an ioredis client the caller owns (never quit here)
 * @property {(app: any, options: any) => any} factory `KoaRedisSessionSets`, from the sources or from dist/
 * @property {number} [durationMs] how long the clients run (default 30 000)
 * @property {number} [clients] concurrent keep-alive HTTP clients (default 32)
 * @property {number} [users] size of the shared user pool (default 20)
 * @property {number} [orgs] size of the org pool (default 5)
 * @property {string} [prefix] key prefix (default: a fresh `soak:<random>`)
 * @property {number} [maxAgeMs] default session lifetime (default 10 minutes)
 * @property {ReadonlyArray<number>} [shortMaxAgesMs] lifetimes some writes use, so sessions expire during the run
 * @property {boolean} [converge] before checking, call listByReference for every set found (default: on a cluster)
 * @property {boolean} [cleanup] delete every key under the prefix at the end (default true)
 * @property {() => void} [gc] a garbage collector to run before measuring memory
 * @property {(line: string) => void} [log] progress lines
 *
 * @typedef {object} Memory
 * @property {number} rss bytes
 * @property {number} heapUsed bytes
 *
 * @typedef {import("../invariants.mjs").Violation} Violation
 *
 * @typedef {object} CheckReport the checker's report (test/invariants.mjs) and what the clients saw
 * @property {number} keys keys under the prefix
 * @property {number} sessions live session hashes
 * @property {number} sets reference sets
 * @property {number} memberships live, correct set memberships
 * @property {number} staleMembers ids of sessions that no longer exist, left in sets (allowed)
 * @property {number} violationCount
 * @property {Record<string, number>} violationsByKind
 * @property {Array<Violation>} violations the first 50 of the checker's, then the first 50 of the clients'
 */

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The convergence step of the cluster guarantee: listByReference of every set found
 * verifies each member against its hash and prunes the stale ones.
 *
 * @param {{ client: AnyRedis, prefix: string, store: { listByReference(field: string, value: string): Promise<Array<string>> }, references?: ReadonlyArray<string> }} options
 */
export const converge = async ({ client, prefix, store, references = REFERENCES }) => {
  /** @type {Array<[string, string]>} */
  const sets = []
  for (const key of await scanPrefix(client, prefix)) {
    const parsed = parseKey(key, prefix, references)
    if (parsed?.kind === "set") sets.push([parsed.field, parsed.value])
  }
  await eachLimited(sets, 8, ([field, value]) => store.listByReference(field, value))
  return sets.length
}

// ---------------------------------------------------------------------------
// The app.

const makeApp = (factory, client, prefix, maxAgeMs, serverErrors) => {
  const app = new Koa()
  app.silent = true
  app.keys = [randomBytes(16).toString("hex")]
  const mw = factory(app, { client, prefix, references: [...REFERENCES], maxAge: maxAgeMs })
  app.use(async (ctx, next) => {
    try {
      await next()
    } catch (error) {
      const tag = (error && error._tag) || (error && error.name) || "unknown"
      serverErrors[tag] = (serverErrors[tag] ?? 0) + 1
      throw error
    }
  })
  app.use(mw)
  const num = (name) => (ctx) => (ctx.query[name] === undefined ? undefined : Number(ctx.query[name]))
  const maxAge = num("maxAge")
  app.use(async (ctx) => {
    const q = ctx.query
    switch (ctx.path) {
      case "/get":
        ctx.body = await ctx.session.get()
        return
      case "/set": {
        /** @type {Record<string, string>} */
        const values = {}
        for (const field of ["user_id", "org_id", "name"]) if (typeof q[field] === "string") values[field] = q[field]
        await ctx.session.set(values, maxAge(ctx))
        ctx.body = await ctx.session.get()
        return
      }
      case "/login":
        await ctx.session.regenerate()
        await ctx.session.set({ user_id: String(q["user_id"]), org_id: String(q["org_id"]) })
        ctx.body = await ctx.session.get()
        return
      case "/unset":
        await ctx.session.unset(String(q["fields"]).split(","), maxAge(ctx))
        ctx.status = 204
        return
      case "/touch":
        await ctx.session.touch(maxAge(ctx))
        ctx.status = 204
        return
      case "/delete":
        await ctx.session.delete()
        ctx.status = 204
        return
      case "/regenerate":
        await ctx.session.regenerate()
        ctx.status = 204
        return
      case "/csrf": {
        const session = await ctx.session.get()
        const token = await ctx.session.createCSRFToken(session)
        ctx.body = { valid: await ctx.session.verifyCSRFToken(session, token) }
        return
      }
      case "/admin/revoke":
        ctx.body = { deleted: await mw.store.deleteByReference(String(q["field"]), String(q["value"])) }
        return
      case "/admin/list":
        ctx.body = { ids: await mw.store.listByReference(String(q["field"]), String(q["value"])) }
        return
      default:
        ctx.status = 404
    }
  })
  return { app, mw }
}

// ---------------------------------------------------------------------------
// The clients.

/** One HTTP/1.1 request on a keep-alive agent. */
const httpGet = (agent, port, path, cookie) =>
  new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent, headers: cookie ? { cookie } : {} }, (res) => {
      const chunks = []
      res.on("data", (chunk) => chunks.push(chunk))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, setCookie: res.headers["set-cookie"] ?? [], body: Buffer.concat(chunks).toString("utf8") }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end()
  })

/** Applies Set-Cookie headers to a jar, as a user agent would. */
const applySetCookie = (jar, headers) => {
  for (const header of headers) {
    const [pair, ...attributes] = header.split(";")
    const eq = pair.indexOf("=")
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    const expires = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith("expires="))
    const expired = expires !== undefined && Date.parse(expires.slice(8)) <= Date.now()
    if (value === "" || expired) jar.delete(name)
    else jar.set(name, value)
  }
}

const pick = (items) => items[Math.floor(Math.random() * items.length)]

/**
 * Weighted operations. Each returns a path, and optionally a check of the response
 * (given the id the request carried, the id the response set, and the parsed body).
 */
const makeOperations = ({ users, orgs, shortMaxAgesMs }) => {
  const user = () => `u${Math.floor(Math.random() * users)}`
  const org = () => `o${Math.floor(Math.random() * orgs)}`
  // Most writes keep the default lifetime; some use a short one, so sessions expire during the run.
  const maxAge = () => (Math.random() < 0.15 ? `&maxAge=${pick(shortMaxAgesMs)}` : Math.random() < 0.1 ? `&maxAge=${20 * 60_000}` : "")
  /** @type {Array<[string, number, () => { path: string, expect?: Record<string, string> }]>} */
  const ops = [
    ["get", 30, () => ({ path: "/get" })],
    [
      "set user_id",
      16,
      () => {
        const u = user()
        return { path: `/set?user_id=${u}${maxAge()}`, expect: { user_id: u } }
      }
    ],
    [
      "set org_id",
      7,
      () => {
        const o = org()
        return { path: `/set?org_id=${o}${maxAge()}`, expect: { org_id: o } }
      }
    ],
    [
      "set both",
      5,
      () => {
        const u = user()
        const o = org()
        return { path: `/set?user_id=${u}&org_id=${o}&name=n${u}${maxAge()}`, expect: { user_id: u, org_id: o } }
      }
    ],
    ["set name", 4, () => ({ path: `/set?name=x${Math.random().toString(36).slice(2, 8)}${maxAge()}` })],
    [
      "login",
      5,
      () => {
        const u = user()
        const o = org()
        return { path: `/login?user_id=${u}&org_id=${o}`, expect: { user_id: u, org_id: o } }
      }
    ],
    ["unset", 7, () => ({ path: `/unset?fields=${pick(["user_id", "org_id", "name", "user_id,org_id", "org_id,name"])}${maxAge()}` })],
    ["touch", 7, () => ({ path: `/touch?x=1${maxAge()}` })],
    ["delete", 3, () => ({ path: "/delete" })],
    ["regenerate", 5, () => ({ path: "/regenerate" })],
    ["csrf", 2, () => ({ path: "/csrf" })],
    ["deleteByReference user", 2, () => ({ path: `/admin/revoke?field=user_id&value=${user()}` })],
    ["deleteByReference org", 1, () => ({ path: `/admin/revoke?field=org_id&value=${org()}` })],
    ["listByReference user", 3, () => ({ path: `/admin/list?field=user_id&value=${user()}` })],
    ["new visitor", 4, () => ({ path: "" })]
  ]
  const total = ops.reduce((sum, [, weight]) => sum + weight, 0)
  return () => {
    let r = Math.random() * total
    for (const [name, weight, make] of ops) {
      r -= weight
      if (r < 0) return { name, ...make() }
    }
    const [name, , make] = ops[0]
    return { name, ...make() }
  }
}

const memory = (gc) => {
  gc?.()
  const { rss, heapUsed } = process.memoryUsage()
  return { rss, heapUsed }
}

/**
 * Runs the soak and the checker.
 *
 * @param {SoakOptions} options
 */
export const runSoak = async (options) => {
  const {
    client,
    factory,
    durationMs = 30_000,
    clients = 32,
    users = 20,
    orgs = 5,
    prefix = `soak:${randomBytes(4).toString("hex")}`,
    maxAgeMs = 10 * 60_000,
    shortMaxAgesMs = [1_500, 4_000],
    cleanup = true,
    gc,
    log = () => {}
  } = options
  const cluster = isCluster(client)
  const shouldConverge = options.converge ?? cluster

  /** @type {Record<string, number>} */
  const serverErrors = {}
  const { app, mw } = makeApp(factory, client, prefix, maxAgeMs, serverErrors)
  const server = createServer(app.callback())
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = /** @type {import("node:net").AddressInfo} */ (server.address()).port

  const next = makeOperations({ users, orgs, shortMaxAgesMs })
  /** @type {Record<string, number>} */
  const opCounts = {}
  /** @type {Record<string, number>} */
  const clientErrors = {}
  /** @type {Array<string>} */
  const errorSamples = []
  /** @type {Array<Violation>} */
  const clientViolations = []
  /** What a client saw, in the checker's shape. */
  const clientViolation = (kind, key, detail, id) => {
    const message = `${kind} ${key}${id === undefined ? "" : ` (session ${id})`}: ${detail}`
    clientViolations.push(id === undefined ? { kind, key, detail, message } : { kind, key, id, detail, message })
  }
  let requests = 0
  const error = (kind, detail) => {
    clientErrors[kind] = (clientErrors[kind] ?? 0) + 1
    if (errorSamples.length < 20) errorSamples.push(`${kind}: ${detail}`)
  }

  const memoryBefore = memory(gc)
  const started = Date.now()
  const deadline = started + durationMs
  const agents = []

  const runClient = async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    agents.push(agent)
    const jar = new Map()
    while (Date.now() < deadline) {
      const op = next()
      opCounts[op.name] = (opCounts[op.name] ?? 0) + 1
      if (op.path === "") {
        jar.clear()
        continue
      }
      const sent = jar.get(COOKIE)
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ")
      let response
      try {
        response = await httpGet(agent, port, op.path, cookie)
      } catch (e) {
        error("network", `${op.name}: ${e instanceof Error ? e.message : String(e)}`)
        await sleep(10)
        continue
      }
      requests++
      applySetCookie(jar, response.setCookie)
      if (response.status >= 300) {
        error(`HTTP ${response.status}`, `${op.path}: ${response.body.slice(0, 200)}`)
        continue
      }
      if (response.status !== 200 || !/^\/(get|set|login|csrf)/.test(op.path)) continue
      // The session served is the one the cookie names, now: never another one.
      let body
      try {
        body = JSON.parse(response.body)
      } catch {
        error("bad JSON", `${op.path}: ${response.body.slice(0, 200)}`)
        continue
      }
      const now = jar.get(COOKIE)
      if (op.path === "/csrf" && body.valid !== true) {
        clientViolation("csrf-token-invalid", op.path, `cookie ${now}`)
      }
      if (body.id !== undefined) {
        if (body.id !== now) {
          clientViolation("served-another-session", op.path, `cookie sent ${sent}, cookie now ${now}`, body.id)
        }
        // A write is read back within the same request (unless a revoke or expiry came between: then {}).
        for (const [field, value] of Object.entries(op.expect ?? {})) {
          if (body[field] !== value) {
            clientViolation("lost-write", op.path, `${field} is ${JSON.stringify(body[field])}`, body.id)
          }
        }
      }
    }
  }

  let lastLog = started
  const progress = setInterval(() => {
    const now = Date.now()
    if (now - lastLog >= 5_000) {
      lastLog = now
      log(`  ${Math.round((now - started) / 1000)} s: ${requests} requests`)
    }
  }, 1_000)
  try {
    await Promise.all(Array.from({ length: clients }, runClient))
  } finally {
    clearInterval(progress)
  }
  const elapsedMs = Date.now() - started
  for (const agent of agents) agent.destroy()
  await new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve(undefined))
  })
  const memoryAfter = memory(gc)

  let converged = 0
  if (shouldConverge) {
    log("  convergence: listByReference of every reference set")
    converged = await converge({ client, prefix, store: mw.store })
  }
  log("  checking invariants")
  // The README's guarantees: sets exact but for ids of expired sessions, every TTL right, no
  // revoke's key left on a single server (every call returned), on a cluster only for G.
  const checked = await checkInvariants({ client, prefix, references: REFERENCES })
  /** @type {Record<string, number>} */
  const violationsByKind = { ...checked.violationsByKind }
  for (const v of clientViolations) violationsByKind[v.kind] = (violationsByKind[v.kind] ?? 0) + 1
  /** @type {CheckReport} */
  const check = {
    keys: checked.keys,
    sessions: checked.sessions,
    sets: checked.sets,
    memberships: checked.memberships,
    staleMembers: checked.staleMembers,
    violationCount: checked.violationCount + clientViolations.length,
    violationsByKind,
    // The first 50 of each.
    violations: [...checked.violations.slice(0, 50), ...clientViolations.slice(0, 50)]
  }

  await mw.close()
  if (cleanup) {
    const keys = await scanPrefix(client, prefix)
    for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((key) => client.del(key)))
  }

  const errorCount = Object.values(clientErrors).reduce((a, b) => a + b, 0)
  return {
    mode: cluster ? "cluster" : "standalone",
    prefix,
    durationMs: elapsedMs,
    clients,
    requests,
    requestsPerSecond: Math.round((requests / elapsedMs) * 1000),
    operations: opCounts,
    errors: { count: errorCount, byKind: clientErrors, server: serverErrors, samples: errorSamples },
    memory: { before: memoryBefore, after: memoryAfter, gc: gc !== undefined },
    converged,
    check
  }
}

const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

/** A concise, human-readable summary of a report. */
export const formatReport = (/** @type {Awaited<ReturnType<typeof runSoak>>} */ report) => {
  const { check, errors, memory: m } = report
  const lines = [
    `soak (${report.mode}): ${report.clients} clients, ${(report.durationMs / 1000).toFixed(1)} s`,
    `  requests     ${report.requests} (${report.requestsPerSecond} req/s)`,
    `  errors       ${errors.count}${errors.count ? ` ${JSON.stringify(errors.byKind)}` : ""}${Object.keys(errors.server).length ? `, server: ${JSON.stringify(errors.server)}` : ""}`,
    `  memory       rss ${mb(m.before.rss)} -> ${mb(m.after.rss)}, heapUsed ${mb(m.before.heapUsed)} -> ${mb(m.after.heapUsed)}${m.gc ? " (after GC)" : " (no GC available)"}`,
    `  keys         ${check.keys}: ${check.sessions} live sessions, ${check.sets} reference sets, ${check.memberships} memberships, ${check.staleMembers} stale ids (allowed)`,
    ...(report.converged ? [`  converged    listByReference on ${report.converged} sets before checking`] : []),
    `  violations   ${check.violationCount}${check.violationCount ? ` ${JSON.stringify(check.violationsByKind)}` : ""}`
  ]
  for (const v of check.violations.slice(0, 10)) lines.push(`    ${v.message}`)
  for (const s of errors.samples.slice(0, 5)) lines.push(`    error ${s}`)
  return lines.join("\n")
}
