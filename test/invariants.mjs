// The one checker of "the data in Redis is consistent", shared by the model-based test
// (test/SessionStore.model.test.ts), the outage test (test/outage.test.ts), the cluster
// tests (test/SessionStore.cluster.test.ts) and the soak (test/soak/core.mjs, run by
// `npm run soak` with plain `node`, so this file is plain ESM JavaScript);
// test/invariants.test.ts plants each broken state and checks that it is reported.
//
// It walks every key under the prefix with SCAN (on every master of a cluster) and
// reports every broken invariant, each with a message:
//
//   key layout (v3.0.0's, spelled out here rather than taken from the library):
//     `${prefix}:{${id}}`                      session hash
//     `${prefix}:${field}:{${value}}`          reference set of a referenced field
//     `${prefix}:${field}:{${value}}:revoking` set a revoke froze (cluster: kept for the
//                                              grace period; single server: only while
//                                              the revoke runs)
//     `${prefix}:{${id}}:revoked`              cluster only: tombstone of a revoked id
//     `${prefix}:{${id}}:left`                 cluster only: the values a session left
//   unexpected-key            a key of none of these layouts, an id that breaks the id rule,
//                             a cluster-only key on a single server
//   revoking-set-left         a revoking set on a single server (every revoke has returned)
//   unexpected-type           a key of the wrong Redis type for its layout
//   session-without-ttl       a session hash without a TTL
//   session-id-mismatch       a session hash whose `id` field is not its own id
//   session-missing-from-set  a live session holding field = value is not a member of that
//                             value's set (with `interruptedRevokes`: nor of its revoking set)
//   set-without-ttl           a reference set without a TTL
//   set-expires-before-member a set expires before a live member holding its value
//   member-holds-other-value  a set member is a live session that does not hold the set's
//                             value (unless `staleMembers` allows it)
//   stale-member              a set member whose session is gone (unless `staleMembers`
//                             allows it: by default it does, expiry cannot tell the sets)
//   revoking-set-ttl          a revoking set without a TTL, or (unless `interruptedRevokes`)
//                             with a TTL longer than the grace period
//   revoked-session-alive     a revoking set member that is a live session holding the value
//                             (unless `interruptedRevokes`), or a tombstone next to a live session
//   tombstone-ttl             a tombstone without a TTL or one longer than the grace period
//   left-record-without-session, left-record-expiry (not exactly its session's expiry),
//   left-record-entry         (an entry that is not `${field}:${value}` → a past unix ms time)
//
// Run it when nothing writes any more; expiry may still happen while it runs (the soak
// uses short lifetimes), and is allowed for: on a single server each set is read in one
// MULTI together with its members' hashes, and each batch of sessions in one MULTI with
// its memberships. On a cluster the keys live on different nodes: each key is read in a
// MULTI of its own. Expiries are compared as absolute times (PEXPIRETIME, Redis >= 7; the
// cluster nodes share the host's clock); the grace period is checked on PTTL.
import { Cluster } from "ioredis"

/**
 * @typedef {import("ioredis").Redis | import("ioredis").Cluster} AnyRedis
 *
 * @typedef {object} StaleMember a set member whose session does not hold the set's value
 * @property {string} field
 * @property {string} value
 * @property {string} id
 * @property {string | null | undefined} holds what the session holds for `field`:
 *   `undefined` when the session is gone, `null` when it holds no value for `field`
 *
 * @typedef {"gone" | "any" | "none" | ((member: StaleMember) => boolean)} StalePolicy
 *   Which set members that do not hold the set's value are allowed: "gone" (the default),
 *   ids of sessions that no longer exist (expiry cannot tell the sets; the README allows
 *   them); "any", also live sessions holding another value or none (what an interrupted
 *   cluster operation may leave before the convergence step); "none", sets are exact; or
 *   a predicate (the model test allows exactly the memberships its model knows expiry left).
 *
 * @typedef {object} CheckOptions
 * @property {AnyRedis} client an ioredis client the caller owns (never quit here)
 * @property {string} prefix the store's key prefix
 * @property {ReadonlyArray<string>} references the store's referenced fields
 * @property {StalePolicy} [staleMembers] default "gone"
 * @property {boolean} [interruptedRevokes] a revoke may have stopped after its first step
 *   (README: the sessions it had not reached stay in its revoking set): a live session
 *   holding the value may be in the value's revoking set instead of its set (that set must
 *   then outlive it), and a revoking set may keep its own TTL, longer than the grace
 *   period. Default false: every revoke has returned.
 * @property {number} [grace] how long a cluster revoke keeps its revoking set and
 *   tombstones: the store's max(60 s, 2 × timeout); default 60 000
 * @property {boolean} [cluster] whether `client` is a cluster (default: detected)
 *
 * @typedef {object} Violation
 * @property {string} kind
 * @property {string} key
 * @property {string} [id] the session concerned
 * @property {string} detail
 * @property {string} message `${kind} ${key} (session ${id}): ${detail}`
 *
 * @typedef {{ key: string, field: string, value: string }} SetKey
 * @typedef {{ key: string, id: string }} IdKey
 *
 * @typedef {object} CheckReport
 * @property {number} keys keys under the prefix
 * @property {number} sessions live session hashes
 * @property {number} sets reference sets
 * @property {number} memberships live, correct set memberships
 * @property {number} frozenMemberships live holders found in their value's revoking set (`interruptedRevokes` only)
 * @property {number} staleMembers set members not holding the value, allowed by `staleMembers`
 * @property {number} violationCount
 * @property {Record<string, number>} violationsByKind
 * @property {Array<Violation>} violations all of them
 * @property {{ sessions: Array<string>, sets: Array<SetKey>, revoking: Array<SetKey>, tombstones: Array<IdKey>, left: Array<IdKey> }} found
 *   what the scan found, by layout: the ids of the live session hashes, and the other keys
 */

/** The id rule (README, "Session ids"): base64url for new ids, v3's base64 ids too. */
export const ID_RULE = /^[A-Za-z0-9_+/=-]{16,128}$/

/** How far in the future a left record's time may be (the server's clock against ours). */
const CLOCK_TOLERANCE_MS = 1000

/** @param {AnyRedis} client */
export const isCluster = (client) => client instanceof Cluster || client?.constructor?.name === "Cluster"

export const sessionKey = (/** @type {string} */ prefix, /** @type {string} */ id) => `${prefix}:{${id}}`
export const referenceKey = (/** @type {string} */ prefix, /** @type {string} */ field, /** @type {string} */ value) => `${prefix}:${field}:{${value}}`
export const revokingKey = (/** @type {string} */ prefix, /** @type {string} */ field, /** @type {string} */ value) => `${referenceKey(prefix, field, value)}:revoking`

const escapeGlob = (/** @type {string} */ s) => s.replace(/[*?[\]\\]/g, "\\$&")

/**
 * Every key under `${prefix}:`, by SCAN on a single server or on every master of a cluster.
 * @param {AnyRedis} client
 * @param {string} prefix
 * @returns {Promise<Array<string>>}
 */
export const scanPrefix = async (client, prefix) => {
  const nodes = isCluster(client) ? /** @type {Cluster} */ (client).nodes("master") : [/** @type {import("ioredis").Redis} */ (client)]
  /** @type {Set<string>} */
  const keys = new Set()
  for (const node of nodes) {
    let cursor = "0"
    do {
      const [next, batch] = await node.scan(cursor, "MATCH", `${escapeGlob(prefix)}:*`, "COUNT", 1000)
      for (const key of batch) keys.add(key)
      cursor = next
    } while (cursor !== "0")
  }
  return [...keys]
}

/**
 * Runs `f` over `items`, at most `limit` at a time.
 * @template T
 * @param {ReadonlyArray<T>} items
 * @param {number} limit
 * @param {(item: T) => Promise<unknown>} f
 */
export const eachLimited = async (items, limit, f) => {
  let next = 0
  const worker = async () => {
    while (next < items.length) await f(/** @type {T} */ (items[next++]))
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/**
 * The layout of a key under `${prefix}:`, or `undefined` for a key of no known layout.
 * (Ids are not checked against the id rule here.)
 * @param {string} key
 * @param {string} prefix
 * @param {ReadonlyArray<string>} references
 * @returns {{ kind: "session" | "tombstone" | "left", id: string } | { kind: "set" | "revoking", field: string, value: string } | undefined}
 */
export const parseKey = (key, prefix, references) => {
  if (!key.startsWith(`${prefix}:`)) return undefined
  const rest = key.slice(prefix.length + 1)
  if (rest.startsWith("{")) {
    if (rest.endsWith("}:revoked")) return { kind: "tombstone", id: rest.slice(1, -"}:revoked".length) }
    if (rest.endsWith("}:left")) return { kind: "left", id: rest.slice(1, -"}:left".length) }
    if (rest.endsWith("}")) return { kind: "session", id: rest.slice(1, -1) }
    return undefined
  }
  const field = references.find((f) => rest.startsWith(`${f}:{`))
  if (field === undefined) return undefined
  const tail = rest.slice(field.length + 2)
  if (tail.endsWith("}:revoking")) return { kind: "revoking", field, value: tail.slice(0, -"}:revoking".length) }
  if (tail.endsWith("}")) return { kind: "set", field, value: tail.slice(0, -1) }
  return undefined
}

/**
 * EXEC's replies; a command that failed (WRONGTYPE on a key of an unexpected type, say) yields its Error.
 * @param {import("ioredis").ChainableCommander} multi
 * @returns {Promise<Array<any>>}
 */
const execAll = async (multi) => {
  const replies = await multi.exec()
  if (replies === null) throw new Error("MULTI aborted")
  return replies.map(([error, reply]) => error ?? reply)
}

/** @type {Record<"gone" | "any" | "none", (member: StaleMember) => boolean>} */
const STALE_POLICIES = {
  gone: (member) => member.holds === undefined,
  any: () => true,
  none: () => false
}

/**
 * Walks every key under `prefix` and reports every broken invariant (see the top of this file).
 * @param {CheckOptions} options
 * @returns {Promise<CheckReport>}
 */
export const checkInvariants = async (options) => {
  const { client, prefix, references, grace = 60_000, interruptedRevokes = false } = options
  const cluster = options.cluster ?? isCluster(client)
  const staleMembers = options.staleMembers ?? "gone"
  const allowStale = typeof staleMembers === "function" ? staleMembers : STALE_POLICIES[staleMembers]
  /** @type {Array<Violation>} */
  const violations = []
  const violate = (/** @type {string} */ kind, /** @type {string} */ key, /** @type {string} */ detail, /** @type {string | undefined} */ id = undefined) => {
    const message = `${kind} ${key}${id === undefined ? "" : ` (session ${id})`}: ${detail}`
    violations.push(id === undefined ? { kind, key, detail, message } : { kind, key, id, detail, message })
  }
  const hashKey = (/** @type {string} */ id) => sessionKey(prefix, id)

  // --- The key layout.
  const keys = await scanPrefix(client, prefix)
  /** @type {Array<string>} */
  const sessionIds = []
  /** @type {Array<SetKey>} */
  const sets = []
  /** @type {Array<SetKey>} */
  const revoking = []
  /** @type {Array<IdKey>} */
  const tombstones = []
  /** @type {Array<IdKey>} */
  const left = []
  for (const key of keys) {
    const parsed = parseKey(key, prefix, references)
    if (parsed === undefined) {
      violate("unexpected-key", key, "neither `prefix:{id}` nor `prefix:field:{value}` (of a referenced field), nor a revoke's key")
    } else if (parsed.kind === "set") {
      sets.push({ key, field: parsed.field, value: parsed.value })
    } else if (parsed.kind === "revoking") {
      // On a single server deleteByReference's revoking set lives only while the call runs.
      if (cluster || interruptedRevokes) revoking.push({ key, field: parsed.field, value: parsed.value })
      else violate("revoking-set-left", key, "a revoking set on a single server, where every revoke has returned")
    } else if (!ID_RULE.test(parsed.id)) {
      violate("unexpected-key", key, `the id ${JSON.stringify(parsed.id)} breaks the id rule ${ID_RULE}`)
    } else if (parsed.kind === "session") {
      sessionIds.push(parsed.id)
    } else if (!cluster) {
      violate("unexpected-key", key, `a ${parsed.kind === "left" ? "left record" : "tombstone"} (cluster only) on a single server`, parsed.id)
    } else if (parsed.kind === "tombstone") {
      tombstones.push({ key, id: parsed.id })
    } else {
      left.push({ key, id: parsed.id })
    }
  }

  /**
   * A set (or revoking set) of `field`, with the state of each member: type, expiry (unix ms),
   * PTTL, and for each member whether its hash exists, what it holds for `field`, its expiry.
   * @param {string} key
   * @param {string} field
   */
  const readSet = async (key, field) => {
    /** @type {Array<{ id: string, exists: number | undefined, held: string | null, at: number }>} */
    let members
    /** @type {string} */
    let type
    /** @type {number} */
    let at
    /** @type {number} */
    let ttl
    if (!cluster) {
      // The members' reads in the same MULTI as the set's, so that no expiry falls in between.
      const first = await client.smembers(key).catch(() => /** @type {Array<string>} */ ([])) // WRONGTYPE: reported below
      const multi = client.multi().type(key).pexpiretime(key).pttl(key).smembers(key)
      for (const id of first) multi.exists(hashKey(id)).hget(hashKey(id), field).pexpiretime(hashKey(id))
      const replies = await execAll(multi)
      ;[type, at, ttl] = replies
      const byId = new Map(first.map((id, i) => [id, { exists: replies[4 + 3 * i], held: replies[5 + 3 * i], at: replies[6 + 3 * i] }]))
      // An id that joined after the first read (nothing writes, so it cannot happen) has exists: undefined.
      members = (type === "set" ? /** @type {Array<string>} */ (replies[3]) : []).map((id) => ({ id, exists: undefined, held: null, at: -2, ...byId.get(id) }))
    } else {
      /** @type {Array<string> | Error} */
      let ids
      ;[type, at, ttl, ids] = await execAll(client.multi().type(key).pexpiretime(key).pttl(key).smembers(key))
      members = []
      await eachLimited(type === "set" ? /** @type {Array<string>} */ (ids) : [], 64, async (id) => {
        const [exists, held, memberAt] = await execAll(client.multi().exists(hashKey(id)).hget(hashKey(id), field).pexpiretime(hashKey(id)))
        members.push({ id, exists, held, at: memberAt })
      })
    }
    return { type, at, ttl, members }
  }

  // --- Reference sets: type, TTL, and every member.
  let memberships = 0
  let frozenMemberships = 0
  let allowedStale = 0
  await eachLimited(sets, cluster ? 4 : 8, async ({ key, field, value }) => {
    const { type, at, members } = await readSet(key, field)
    if (type === "none") return // expired since the SCAN
    if (type !== "set") return violate("unexpected-type", key, `a reference key of type ${type}`)
    if (at === -1) violate("set-without-ttl", key, `${members.length} members, no TTL`)
    for (const member of members) {
      if (member.exists === undefined) continue
      const holds = member.exists === 1 ? member.held : undefined
      if (holds === value) {
        memberships++
        if (at >= 0 && member.at >= 0 && at < member.at) {
          violate("set-expires-before-member", key, `the set expires ${member.at - at} ms before the session (at ${at}, the session at ${member.at})`, member.id)
        }
      } else if (allowStale({ field, value, id: member.id, holds })) {
        allowedStale++
      } else if (holds === undefined) {
        violate("stale-member", key, "a member whose session no longer exists", member.id)
      } else {
        violate("member-holds-other-value", key, `a live member holding ${field}=${JSON.stringify(holds)}`, member.id)
      }
    }
  })

  // --- Session hashes: type, TTL, own id, and membership of the set of every referenced value.
  /** @type {Array<string>} */
  const liveSessions = []
  const checkSessions = async (/** @type {Array<string>} */ ids) => {
    /** @type {Array<{ id: string, type: string, values: Array<string | null>, at: number }>} */
    let read
    if (!cluster) {
      const multi = client.multi()
      for (const id of ids) multi.type(hashKey(id)).hmget(hashKey(id), "id", ...references).pexpiretime(hashKey(id))
      const replies = await execAll(multi)
      read = ids.map((id, i) => ({ id, type: replies[3 * i], values: replies[3 * i + 1], at: replies[3 * i + 2] }))
    } else {
      read = []
      await eachLimited(ids, 64, async (id) => {
        const [type, values, at] = await execAll(client.multi().type(hashKey(id)).hmget(hashKey(id), "id", ...references).pexpiretime(hashKey(id)))
        read.push({ id, type, values, at })
      })
    }
    /** @type {Array<{ id: string, field: string, value: string }>} */
    const held = []
    for (const { id, type, values, at } of read) {
      if (type === "none") continue // expired since the SCAN
      if (type !== "hash") {
        violate("unexpected-type", hashKey(id), `a session key of type ${type}`, id)
        continue
      }
      liveSessions.push(id)
      if (values[0] !== id) violate("session-id-mismatch", hashKey(id), `the id field is ${JSON.stringify(values[0])}`, id)
      if (at === -1) violate("session-without-ttl", hashKey(id), "a session hash without a TTL", id)
      references.forEach((field, i) => {
        const value = values[i + 1]
        if (value !== null && value !== undefined) held.push({ id, field, value })
      })
    }
    if (held.length === 0) return
    const missing = (/** @type {{ id: string, field: string, value: string }} */ { id, field, value }) =>
      violate(
        "session-missing-from-set",
        referenceKey(prefix, field, value),
        `the session holds ${field}=${JSON.stringify(value)} but is not in its set${interruptedRevokes ? " (nor in its revoking set)" : ""}`,
        id
      )
    if (!cluster) {
      // Re-read the value with the memberships, atomically: a session that expired meanwhile holds nothing.
      const multi = client.multi()
      for (const { id, field, value } of held) multi.hget(hashKey(id), field).sismember(referenceKey(prefix, field, value), id).sismember(revokingKey(prefix, field, value), id)
      const replies = await execAll(multi)
      held.forEach((pair, i) => {
        const inRevoking = interruptedRevokes && replies[3 * i + 2] === 1
        if (replies[3 * i] === pair.value && replies[3 * i + 1] !== 1 && !inRevoking) missing(pair)
      })
    } else {
      await eachLimited(held, 64, async (pair) => {
        const { id, field, value } = pair
        if ((await client.sismember(referenceKey(prefix, field, value), id)) === 1) return
        if (interruptedRevokes && (await client.sismember(revokingKey(prefix, field, value), id)) === 1) return
        // Not a member: a violation unless the session expired in the meantime.
        if ((await client.hget(hashKey(id), field)) === value) missing(pair)
      })
    }
  }
  for (let i = 0; i < sessionIds.length; i += 200) await checkSessions(sessionIds.slice(i, i + 200))

  // --- Revokes: a revoking set lives at most the grace period (or, interrupted, keeps the set's
  // own TTL) and none of its members is a live session holding its value (it would have escaped
  // the revoke), unless the revoke was interrupted: then the set outlives each such member.
  await eachLimited(revoking, 4, async ({ key, field, value }) => {
    const { type, at, ttl, members } = await readSet(key, field)
    if (type === "none") return
    if (type !== "set") return violate("unexpected-type", key, `a revoking key of type ${type}`)
    if (ttl === -1) violate("revoking-set-ttl", key, "a revoking set without a TTL")
    else if (ttl > grace && !interruptedRevokes) violate("revoking-set-ttl", key, `TTL ${ttl} ms, longer than the grace period (${grace} ms)`)
    for (const member of members) {
      if (member.exists !== 1 || member.held !== value) continue
      if (!interruptedRevokes) {
        violate("revoked-session-alive", key, `a live member holding ${field}=${JSON.stringify(value)}`, member.id)
        continue
      }
      frozenMemberships++
      if (at >= 0 && member.at >= 0 && at < member.at) {
        violate("set-expires-before-member", key, `the revoking set expires ${member.at - at} ms before the session (at ${at}, the session at ${member.at})`, member.id)
      }
    }
  })

  // A tombstone lives at most the grace period and its session is gone.
  await eachLimited(tombstones, 64, async ({ key, id }) => {
    const [type, ttl, hashType] = await execAll(client.multi().type(key).pttl(key).type(hashKey(id)))
    if (type === "none") return
    if (type !== "string") return violate("unexpected-type", key, `a tombstone of type ${type}`, id)
    if (ttl === -1) violate("tombstone-ttl", key, "a tombstone without a TTL", id)
    else if (ttl > grace) violate("tombstone-ttl", key, `TTL ${ttl} ms, longer than the grace period (${grace} ms)`, id)
    if (hashType !== "none") violate("revoked-session-alive", key, "a tombstone next to a live session", id)
  })

  // A left record lives exactly as long as its session's hash, and maps `${field}:${value}` to a past time.
  await eachLimited(left, 64, async ({ key, id }) => {
    const [type, at, entries, hashType, hashAt] = await execAll(client.multi().type(key).pexpiretime(key).hgetall(key).type(hashKey(id)).pexpiretime(hashKey(id)))
    if (type === "none") return
    if (type !== "hash") return violate("unexpected-type", key, `a left record of type ${type}`, id)
    if (hashType === "none") violate("left-record-without-session", key, "its session is gone", id)
    else if (at !== hashAt) violate("left-record-expiry", key, `expires at ${at}, its session at ${hashAt}`, id)
    const now = Date.now()
    for (const [entry, time] of Object.entries(/** @type {Record<string, string>} */ (entries))) {
      if (!references.some((field) => entry.startsWith(`${field}:`))) {
        violate("left-record-entry", key, `${JSON.stringify(entry)} names no referenced field`, id)
      }
      if (!/^\d+$/.test(time) || Number(time) > now + CLOCK_TOLERANCE_MS) {
        violate("left-record-entry", key, `${JSON.stringify(entry)} → ${JSON.stringify(time)} is not a past unix ms time`, id)
      }
    }
  })

  /** @type {Record<string, number>} */
  const violationsByKind = {}
  for (const v of violations) violationsByKind[v.kind] = (violationsByKind[v.kind] ?? 0) + 1
  return {
    keys: keys.length,
    sessions: liveSessions.length,
    sets: sets.length,
    memberships,
    frozenMemberships,
    staleMembers: allowedStale,
    violationCount: violations.length,
    violationsByKind,
    violations,
    found: { sessions: liveSessions, sets, revoking, tombstones, left }
  }
}
