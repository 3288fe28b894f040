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
// When the time is up, the checker walks every key under the prefix with SCAN (every
// master of a cluster) and reports each broken invariant:
//   - a live session holding field = value is a member of the set of (field, value),
//   - a set holds no live session that does not hold its value (so no session is in the
//     set of another value of that field),
//   - a set outlives every live member holding its value (set TTL >= member TTL) and
//     has a TTL at all; every session has a TTL and its `id` field is its own id.
// Ids of expired sessions may stay in sets (the README allows that); they are counted.
//
// The core knows nothing of how Redis was started or where the library comes from:
// the caller passes the ioredis client (`Redis` or `Cluster`) and the factory.
import { randomBytes } from "node:crypto"
import { Agent, createServer, request } from "node:http"
import { Cluster } from "ioredis"
import Koa from "koa"

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
 * @typedef {object} Violation
 * @property {string} kind
 * @property {string} key
 * @property {string} [id]
 * @property {string} detail
 *
 * @typedef {object} CheckReport
 * @property {number} keys keys under the prefix
 * @property {number} sessions live session hashes
 * @property {number} sets reference sets
 * @property {number} memberships live, correct set memberships
 * @property {number} staleMembers ids of sessions that no longer exist, left in sets (allowed)
 * @property {number} violationCount
 * @property {Record<string, number>} violationsByKind
 * @property {Array<Violation>} violations the first 50
 */

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** @param {AnyRedis} client */
export const isCluster = (client) => client instanceof Cluster || client?.constructor?.name === "Cluster"

const escapeGlob = (s) => s.replace(/[*?[\]\\]/g, "\\$&")

/** Every key under `${prefix}:`, by SCAN on a single server or on every master of a cluster. */
export const scanPrefix = async (/** @type {AnyRedis} */ client, /** @type {string} */ prefix) => {
  const nodes = isCluster(client) ? /** @type {import("ioredis").Cluster} */ (client).nodes("master") : [/** @type {import("ioredis").Redis} */ (client)]
  const keys = new Set()
  for (const node of nodes) {
    let cursor = "0"
    do {
      const [next, batch] = await node.scan(cursor, "MATCH", `${escapeGlob(prefix)}:*`, "COUNT", 1000)
      for (const key of batch) keys.add(key)
      cursor = next
    } while (cursor !== "0")
  }
  return /** @type {Array<string>} */ ([...keys])
}

/** Runs `f` over `items`, at most `limit` at a time. */
const eachLimited = async (items, limit, f) => {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]
      await f(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/**
 * A key of the v3.0.0 layout: the session hash `${prefix}:{${id}}` or the reference set
 * `${prefix}:${field}:{${value}}`; `undefined` for any other key under the prefix.
 * @returns {{ id: string, field?: undefined, value?: undefined } | { id?: undefined, field: string, value: string } | undefined}
 */
/**
 * The keys a cluster revoke adds next to v3's layout: `prefix:field:{value}:revoking` (a
 * reference set being, or just, revoked), `prefix:{id}:revoked` (tombstone), `prefix:{id}:left`.
 */
export const parseExtraKey = (/** @type {string} */ key, /** @type {string} */ prefix, /** @type {ReadonlyArray<string>} */ references) => {
  const rest = key.slice(prefix.length + 1)
  if (rest.endsWith("}:revoking")) {
    const field = references.find((f) => rest.startsWith(`${f}:{`))
    return field === undefined ? undefined : { kind: "revoking", field, value: rest.slice(field.length + 2, -"}:revoking".length) }
  }
  for (const kind of ["revoked", "left"]) {
    if (rest.startsWith("{") && rest.endsWith(`}:${kind}`)) return { kind, id: rest.slice(1, -`}:${kind}`.length) }
  }
  return undefined
}

export const parseKey = (/** @type {string} */ key, /** @type {string} */ prefix, /** @type {ReadonlyArray<string>} */ references) => {
  const rest = key.slice(prefix.length + 1)
  if (!rest.endsWith("}")) return undefined
  if (rest.startsWith("{")) return { id: rest.slice(1, -1) }
  const field = references.find((f) => rest.startsWith(`${f}:{`))
  return field === undefined ? undefined : { field, value: rest.slice(field.length + 2, -1) }
}

/** EXEC's replies; a command that failed (WRONGTYPE on a key of an unexpected type, say) yields its Error. */
const execAll = async (multi) => {
  const replies = await multi.exec()
  if (replies === null) throw new Error("MULTI aborted")
  return replies.map(([error, reply]) => error ?? reply)
}

// ---------------------------------------------------------------------------
// The checker.

/**
 * Walks every session hash and reference set under `prefix` and reports broken invariants.
 * Run it when nothing writes any more (expiry may still happen, and is allowed for).
 *
 * On a single server each reference set is read in one MULTI together with its members'
 * hashes (the set's PTTL first: time runs on between the commands of a MULTI, so the
 * members' PTTLs, read later, can only come out smaller). On a cluster the keys live on
 * different nodes: each key is read in a MULTI of its own and expiries are compared as
 * absolute times (PEXPIRETIME, Redis >= 7; the nodes share this host's clock).
 *
 * `grace`: how long a cluster revoke keeps its revoking set and tombstones (the store's
 * max(60 s, 2 × timeout)).
 *
 * @param {{ client: AnyRedis, prefix: string, references?: ReadonlyArray<string>, grace?: number }} options
 * @returns {Promise<CheckReport>}
 */
export const checkInvariants = async ({ client, prefix, references = REFERENCES, grace = 60_000 }) => {
  const cluster = isCluster(client)
  // On a cluster, absolute expiries become "ms after t0" so that one comparison serves both modes.
  const t0 = Date.now()
  const relative = (at) => (at < 0 ? at : at - t0)
  /** @type {Array<Violation>} */
  const violations = []
  const violate = (kind, key, detail, id) => violations.push(id === undefined ? { kind, key, detail } : { kind, key, id, detail })

  const keys = await scanPrefix(client, prefix)
  /** @type {Array<{ key: string, field: string, value: string }>} */
  const sets = []
  /** @type {Array<string>} */
  const sessionIds = []
  /** @type {Array<{ key: string, field: string, value: string }>} */
  const revokingSets = []
  /** @type {Array<{ key: string, id: string, kind: string }>} */
  const sessionExtras = []
  for (const key of keys) {
    const parsed = parseKey(key, prefix, references)
    const extra = parseExtraKey(key, prefix, references)
    // On a single server, deleteByReference's revoking set lives only while the call runs, and
    // every call has returned. On a cluster it (and a tombstone per revoked id) stays for the
    // grace period after the revoke, and each session may have a left record.
    if (extra !== undefined && !cluster) violate(extra.kind === "revoking" ? "revoking-set-left" : "unexpected-key", key, `a ${extra.kind} key on a single server`)
    else if (extra?.kind === "revoking") revokingSets.push({ key, field: extra.field, value: extra.value })
    else if (extra !== undefined) sessionExtras.push({ key, id: extra.id, kind: extra.kind })
    else if (parsed === undefined) violate("unexpected-key", key, "neither `prefix:{id}` nor `prefix:field:{value}`")
    else if (parsed.id !== undefined) sessionIds.push(parsed.id)
    else sets.push({ key, field: parsed.field, value: parsed.value })
  }
  const hashKey = (id) => `${prefix}:{${id}}`
  const setKey = (field, value) => `${prefix}:${field}:{${value}}`

  // --- Reference sets: type, TTL, and every member.
  let memberships = 0
  let staleMembers = 0
  const readSet = async ({ key, field, value }) => {
    let type, setTtl, members, states
    if (!cluster) {
      const first = await client.smembers(key)
      const multi = client.multi().type(key).pttl(key).smembers(key)
      for (const id of first) multi.exists(hashKey(id)).hget(hashKey(id), field).pttl(hashKey(id))
      const replies = await execAll(multi)
      ;[type, setTtl, members] = replies
      const byId = new Map(first.map((id, i) => [id, { exists: replies[3 + 3 * i], value: replies[4 + 3 * i], ttl: replies[5 + 3 * i] }]))
      states = members.map((id) => ({ id, ...byId.get(id) }))
    } else {
      ;[type, setTtl, members] = await execAll(client.multi().type(key).pexpiretime(key).smembers(key))
      setTtl = relative(setTtl)
      states = []
      await eachLimited(members, 64, async (id) => {
        const [exists, held, at] = await execAll(client.multi().exists(hashKey(id)).hget(hashKey(id), field).pexpiretime(hashKey(id)))
        states.push({ id, exists, value: held, ttl: relative(at) })
      })
    }
    if (type === "none") return // expired since the SCAN
    if (type !== "set") return violate("unexpected-type", key, `a reference key of type ${type}`)
    if (setTtl === -1) violate("set-without-ttl", key, `${members.length} members, no TTL`)
    for (const member of states) {
      if (member.exists === undefined) continue // joined after the first read: cannot happen while nothing writes
      if (member.exists === 0) {
        staleMembers++
        continue
      }
      if (member.value !== value) {
        violate("member-holds-other-value", key, `live session holds ${field}=${JSON.stringify(member.value)}`, member.id)
        continue
      }
      memberships++
      if (setTtl >= 0 && member.ttl >= 0 && setTtl < member.ttl) {
        violate("set-expires-before-member", key, `set ${setTtl} ms < session ${member.ttl} ms`, member.id)
      }
    }
  }

  // --- Session hashes: type, TTL, own id, and membership of the set of every referenced value.
  let liveSessions = 0
  const checkSessions = async (ids) => {
    /** @type {Array<{ id: string, type: string, values: Array<string | null>, ttl: number }>} */
    let read
    if (!cluster) {
      const multi = client.multi()
      for (const id of ids) multi.type(hashKey(id)).hmget(hashKey(id), "id", ...references).pttl(hashKey(id))
      const replies = await execAll(multi)
      read = ids.map((id, i) => ({ id, type: replies[3 * i], values: replies[3 * i + 1], ttl: replies[3 * i + 2] }))
    } else {
      read = []
      await eachLimited(ids, 64, async (id) => {
        const [type, values, at] = await execAll(client.multi().type(hashKey(id)).hmget(hashKey(id), "id", ...references).pexpiretime(hashKey(id)))
        read.push({ id, type, values, ttl: relative(at) })
      })
    }
    /** @type {Array<{ id: string, field: string, value: string }>} */
    const held = []
    for (const { id, type, values, ttl } of read) {
      if (type === "none") continue
      if (type !== "hash") {
        violate("unexpected-type", hashKey(id), `a session key of type ${type}`, id)
        continue
      }
      liveSessions++
      if (values[0] !== id) violate("session-id-mismatch", hashKey(id), `id field is ${JSON.stringify(values[0])}`, id)
      if (ttl === -1) violate("session-without-ttl", hashKey(id), "no TTL", id)
      references.forEach((field, i) => {
        const value = values[i + 1]
        if (value !== null && value !== undefined) held.push({ id, field, value })
      })
    }
    if (held.length === 0) return
    if (!cluster) {
      // Re-read the value with the membership, atomically: a session that expired meanwhile holds nothing.
      const multi = client.multi()
      for (const { id, field, value } of held) multi.hget(hashKey(id), field).sismember(setKey(field, value), id)
      const replies = await execAll(multi)
      held.forEach(({ id, field, value }, i) => {
        if (replies[2 * i] === value && replies[2 * i + 1] !== 1) {
          violate("session-missing-from-set", setKey(field, value), `session holds ${field}=${JSON.stringify(value)}`, id)
        }
      })
    } else {
      await eachLimited(held, 64, async ({ id, field, value }) => {
        if ((await client.sismember(setKey(field, value), id)) === 1) return
        // Not a member: a violation unless the session expired in the meantime.
        if ((await client.hget(hashKey(id), field)) === value) {
          violate("session-missing-from-set", setKey(field, value), `session holds ${field}=${JSON.stringify(value)}`, id)
        }
      })
    }
  }

  // --- Cluster revokes: a revoking set lives at most the grace period, and none of its members
  // is a live session holding its value (it would have escaped the revoke); a tombstone lives
  // at most the grace period and its session is gone; a left record lives exactly as long as
  // its session's hash.
  await eachLimited(revokingSets, 4, async ({ key, field, value }) => {
    const [type, ttl, members] = await execAll(client.multi().type(key).pttl(key).smembers(key))
    if (type === "none") return
    if (type !== "set") return violate("unexpected-type", key, `a revoking key of type ${type}`)
    if (ttl < 0 || ttl > grace) violate("revoking-set-ttl", key, `TTL ${ttl} ms, not within the grace period (${grace} ms)`)
    await eachLimited(members, 64, async (id) => {
      if ((await client.hget(hashKey(id), field)) === value) violate("revoked-session-alive", key, `holds ${field}=${JSON.stringify(value)}`, id)
    })
  })
  await eachLimited(sessionExtras, 64, async ({ key, id, kind }) => {
    const [type, at, ttl] = await execAll(client.multi().type(key).pexpiretime(key).pttl(key))
    if (type === "none") return
    const [hashType, hashAt] = await execAll(client.multi().type(hashKey(id)).pexpiretime(hashKey(id)))
    if (kind === "revoked") {
      if (type !== "string") return violate("unexpected-type", key, `a tombstone of type ${type}`, id)
      if (ttl < 0 || ttl > grace) violate("tombstone-ttl", key, `TTL ${ttl} ms, not within the grace period (${grace} ms)`, id)
      if (hashType !== "none") violate("revoked-session-alive", key, "a tombstone next to a live session", id)
    } else {
      if (type !== "hash") return violate("unexpected-type", key, `a left record of type ${type}`, id)
      if (hashType === "none") violate("left-record-without-session", key, "its session is gone", id)
      else if (at !== hashAt) violate("left-record-expiry", key, `expires at ${at}, its session at ${hashAt}`, id)
    }
  })

  await eachLimited(sets, cluster ? 4 : 8, readSet)
  for (let i = 0; i < sessionIds.length; i += 200) await checkSessions(sessionIds.slice(i, i + 200))

  /** @type {Record<string, number>} */
  const violationsByKind = {}
  for (const v of violations) violationsByKind[v.kind] = (violationsByKind[v.kind] ?? 0) + 1
  return {
    keys: keys.length,
    sessions: liveSessions,
    sets: sets.length,
    memberships,
    staleMembers,
    violationCount: violations.length,
    violationsByKind,
    violations: violations.slice(0, 50)
  }
}

/**
 * The convergence step of the cluster guarantee: listByReference of every set found
 * verifies each member against its hash and prunes the stale ones.
 *
 * @param {{ client: AnyRedis, prefix: string, store: { listByReference(field: string, value: string): Promise<Array<string>> }, references?: ReadonlyArray<string> }} options
 */
export const converge = async ({ client, prefix, store, references = REFERENCES }) => {
  const sets = []
  for (const key of await scanPrefix(client, prefix)) {
    const parsed = parseKey(key, prefix, references)
    if (parsed?.field !== undefined) sets.push([parsed.field, parsed.value])
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
        clientViolations.push({ kind: "csrf-token-invalid", key: op.path, detail: `cookie ${now}` })
      }
      if (body.id !== undefined) {
        if (body.id !== now) {
          clientViolations.push({ kind: "served-another-session", key: op.path, id: body.id, detail: `cookie sent ${sent}, cookie now ${now}` })
        }
        // A write is read back within the same request (unless a revoke or expiry came between: then {}).
        for (const [field, value] of Object.entries(op.expect ?? {})) {
          if (body[field] !== value) {
            clientViolations.push({ kind: "lost-write", key: op.path, id: body.id, detail: `${field} is ${JSON.stringify(body[field])}` })
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
  const check = await checkInvariants({ client, prefix })
  check.violations.push(...clientViolations.slice(0, 50))
  check.violationCount += clientViolations.length
  for (const v of clientViolations) check.violationsByKind[v.kind] = (check.violationsByKind[v.kind] ?? 0) + 1

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
  for (const v of check.violations.slice(0, 10)) lines.push(`    ${v.kind} ${v.key}${v.id ? ` id=${v.id}` : ""}: ${v.detail}`)
  for (const s of errors.samples.slice(0, 5)) lines.push(`    error ${s}`)
  return lines.join("\n")
}
