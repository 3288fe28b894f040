// The SessionStore operations for a Redis Cluster.
//
// On a cluster the session hash `${prefix}:{${id}}` and its reference sets
// `${prefix}:${field}:{${value}}` live in different hash slots (the braces are hash
// tags: the slot follows the id, or the value), so no script may touch them together. Each write is therefore a short protocol of single-slot
// steps, ordered so that a live session is never missing from the set of a value
// it holds, even when the protocol stops half-way (see the README, "Redis Cluster"):
//
//   1. read     the referenced fields (which sets the session is in now)
//   2. pre-add  SADD the id to the set of every value the session will hold,
//               extending each set to live at least `ttl` from now
//   3. write    one script on the hash slot: compare-and-set on the referenced
//               fields the write keeps, write, PEXPIREAT capped by the sets'
//               expiries; returns the old and new referenced values
//   4. reconcile  SREM the id from sets of values it no longer holds, re-assert
//               the sets of the values it holds, then re-read the hash and repeat
//               until the read agrees with what was applied
//
// Readers verify every member against its hash (one script per id, routed to the
// id's slot, sent concurrently) and prune stale members with the same reconcile.
//
// Revoke-all (deleteByReference) cannot be escaped: it freezes the value's set into its
// revoking set (value's slot, returns t0), then checks every member on its own slot,
// deleting it when it holds the value or left it since t0 - margin (writes keep a "left"
// record next to the hash), and tombstoning ids without a hash. A regenerate's pre-add
// is refused when its old id is in the revoking set of a value it holds or left, and a
// create is refused by a tombstone; the revoking set outlives the scan by `grace`.
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import type { CheckedWrite, MaxAgeInput, SessionStoreError, SessionStoreService, SessionValue } from "../SessionStore.js"
import { RedisTimeoutError } from "../RedisClient.js"
import { InvalidSessionData, InvalidSessionId, RedisError } from "../SessionError.js"
import { leftKey, referenceKey, revokingKey, sessionKey, tombstoneKey } from "./keys.js"
import { clusterAddReference } from "./lua/clusterAddReference.js"
import { clusterDeleteSession } from "./lua/clusterDeleteSession.js"
import { clusterFreezeReference, clusterKeepRevoking } from "./lua/clusterFreezeReference.js"
import { clusterRevokeSession } from "./lua/clusterRevokeSession.js"
import { clusterReadState } from "./lua/clusterReadState.js"
import { clusterWriteSession } from "./lua/clusterWriteSession.js"
import { clusterRegenerateSnapshot } from "./lua/regenerateSession.js"
import { CSRF_SECRET_FIELD, rotatedSecret } from "../Csrf.js"
import { checkFieldList, checkSessionId, ID_FIELD } from "./validate.js"

/** The parts of the standalone store's validation the cluster store reuses. */
export interface ClusterStoreHelpers {
  readonly ttlFor: (maxAge: MaxAgeInput | null | undefined) => number | InvalidSessionData
  readonly checkReference: (field: string, value: SessionValue) => string | InvalidSessionData
  readonly checkWrite: (id: string, values: unknown, maxAge: MaxAgeInput | null | undefined) => CheckedWrite | SessionStoreError
}

/** Raised as the `cause` of a `RedisError` when concurrent writes keep changing a session's referenced fields. */
export class ClusterWriteConflict extends Error {
  constructor(readonly attempts: number) {
    super(`the session's referenced fields changed under ${attempts} attempts in a row`)
    this.name = "ClusterWriteConflict"
  }
}

/** Ids per SSCAN page in `listByReference` / `deleteByReference`. */
const SCAN_BATCH = 500
/** Ids of one page checked at once (one command each, routed to each id's slot). */
const ID_CONCURRENCY = 64
/** Compare-and-set attempts of a write before it fails with `RedisError`. */
const MAX_WRITE_ATTEMPTS = 16
/** Reconcile rounds before giving up on removals (stale members are then left to readers). */
const MAX_RECONCILE_ROUNDS = 32
const NO_SESSION = -2
/** clusterAddReference: the ancestor (a regenerate's old id) is being revoked. clusterWriteSession: the id was revoked. */
const REVOKED = -3

type Value = string | null

/** A session hash as one atomic read saw it: absolute expiry (unix ms, -2 = no session) and referenced values. */
interface SessionState {
  readonly expireAt: number
  readonly values: ReadonlyArray<Value>
}

/** Reference index → values whose set may hold the id: what a reconcile must settle. */
type Candidates = Map<number, Set<string>>

const addCandidate = (candidates: Candidates, index: number, value: Value) => {
  if (value === null) return
  const values = candidates.get(index)
  if (values === undefined) candidates.set(index, new Set([value]))
  else values.add(value)
}

const asValue = (reply: unknown): Value => (reply === null || reply === undefined ? null : String(reply))

const asArray = (reply: unknown): ReadonlyArray<unknown> => (Array.isArray(reply) ? reply : [])

interface WriteReply {
  readonly status: number
  readonly state: SessionState
  readonly old: ReadonlyArray<Value>
}

type Write =
  | { readonly op: "set"; readonly pairs: ReadonlyArray<string> }
  | { readonly op: "unset"; readonly fields: ReadonlyArray<string> }
  | { readonly op: "touch" }

/**
 * The store over a cluster client: `standalone` supplies everything that touches
 * one key only (`get`, ids, key names); every operation that involves reference
 * sets is replaced by its cluster protocol.
 */
export const makeClusterStore = (standalone: SessionStoreService, helpers: ClusterStoreHelpers): SessionStoreService => {
  const { redis, prefix, references, byteLength, limits } = standalone
  const { ttlFor, checkReference, checkWrite } = helpers
  const nrefs = references.length
  const referenceIndex = new Map(references.map((field, i) => [field, i] as const))
  const none: ReadonlyArray<Value> = references.map(() => null)
  const missing: SessionState = { expireAt: NO_SESSION, values: none }

  const hashKey = (id: string) => sessionKey(prefix, id)
  const setKey = (index: number, value: string) => referenceKey(prefix, references[index]!, value)
  const revokingSetKey = (index: number, value: string) => revokingKey(prefix, references[index]!, value)
  // A revoke keeps its revoking set `grace` ms after it returns, and tombstones the ids it
  // revoked as long: longer than any operation in flight may take (each is bounded by
  // `timeout`). `margin`: how long before the revoke's start a session may have left the
  // value and still be revoked (a write in flight, clock skew between nodes).
  const grace = Math.max(60_000, 2 * redis.timeoutMillis)
  const margin = redis.timeoutMillis + 1_000

  const readState = (operation: string, id: string): Effect.Effect<SessionState, RedisError> =>
    Effect.map(redis.runScript(operation, clusterReadState, [hashKey(id)], [nrefs, ...references]), (reply) => {
      const items = asArray(reply)
      const expireAt = Number(items[0])
      if (expireAt === NO_SESSION) return missing
      return { expireAt, values: references.map((_, i) => asValue(items[1 + i])) }
    })

  /**
   * SADD + extend (see clusterAddReference). Returns the set's absolute expiry, -1 for none,
   * -2 nothing added, -3 (REVOKED) refused: `ancestor` is in the value's revoking set.
   */
  const addReference = (
    operation: string,
    index: number,
    value: string,
    id: string,
    mode: "ttl" | "at" | "check",
    amount: number,
    ancestor = ""
  ) =>
    Effect.map(
      redis.runScript(operation, clusterAddReference, [setKey(index, value), revokingSetKey(index, value)], [id, mode, amount, ancestor]),
      Number
    )

  const removeReference = (operation: string, index: number, value: string, id: string) =>
    redis.use(operation, (client) => client.srem(setKey(index, value), id))

  const sameFor = (candidates: Candidates, a: SessionState, b: SessionState): boolean => {
    let holdsOne = false
    for (const index of candidates.keys()) {
      if (a.values[index] !== b.values[index]) return false
      if (a.values[index] !== null) holdsOne = true
    }
    return (a.expireAt === NO_SESSION) === (b.expireAt === NO_SESSION) && (!holdsOne || a.expireAt === b.expireAt)
  }

  /**
   * Brings the id's membership of every candidate set in line with the hash:
   * member (with the set living at least as long as the hash) when the session
   * holds that value, else not. Every change is followed by a fresh atomic read
   * of the hash, and applied again while that read disagrees, so an SREM that
   * raced with a write of the same value is undone. After too many rounds it
   * stops removing: a stale member is harmless (readers verify), a missing one is not.
   */
  const reconcile = (operation: string, id: string, candidates: Candidates, state: SessionState): Effect.Effect<void, RedisError> => {
    const round = (current: SessionState, n: number): Effect.Effect<void, RedisError> => {
      const steps: Array<Effect.Effect<unknown, RedisError>> = []
      for (const [index, values] of candidates) {
        for (const value of values) {
          if (current.expireAt !== NO_SESSION && current.values[index] === value) {
            steps.push(addReference(operation, index, value, id, "at", current.expireAt))
          } else if (n < MAX_RECONCILE_ROUNDS) {
            steps.push(removeReference(operation, index, value, id))
          }
        }
      }
      if (steps.length === 0) return Effect.void
      const applied = Effect.all(steps, { concurrency: "unbounded", discard: true })
      if (n >= MAX_RECONCILE_ROUNDS) return applied
      return applied.pipe(
        Effect.zipRight(readState(operation, id)),
        Effect.flatMap((next) => (sameFor(candidates, current, next) ? Effect.void : round(next, n + 1)))
      )
    }
    return candidates.size === 0 ? Effect.void : round(state, 0)
  }

  /**
   * Step 2: the id joins the set of every value in `after`. Returns the cap for step 3
   * (-1 = none), or REVOKED when `ancestor` (a regenerate's old id) is in the revoking set
   * of one of those values or of one it left (`left`: index → values): nothing is added to
   * that set then, and the caller takes back the others.
   */
  const preAdd = (
    operation: string,
    id: string,
    after: ReadonlyArray<Value>,
    ttl: number,
    candidates: Candidates,
    ancestor = "",
    left: ReadonlyArray<readonly [number, string]> = []
  ) => {
    const adds: Array<Effect.Effect<number, RedisError>> = []
    after.forEach((value, index) => {
      if (value === null) return
      addCandidate(candidates, index, value)
      adds.push(addReference(operation, index, value, id, "ttl", ttl, ancestor))
    })
    for (const [index, value] of left) adds.push(addReference(operation, index, value, id, "check", 0, ancestor))
    return Effect.map(Effect.all(adds, { concurrency: "unbounded" }), (expiries) => {
      if (expiries.includes(REVOKED)) return REVOKED
      const finite = expiries.filter((at) => at >= 0)
      return finite.length === 0 ? -1 : Math.min(...finite)
    })
  }

  const parseWriteReply = (reply: unknown): WriteReply => {
    const items = asArray(reply)
    const status = Number(items[0])
    const expireAt = Number(items[1])
    const old = references.map((_, i) => asValue(items[2 + i]))
    const values = references.map((_, i) => asValue(items[2 + nrefs + i]))
    return { status, old, state: expireAt === NO_SESSION ? missing : { expireAt, values } }
  }

  const runWriteScript = (
    operation: string,
    id: string,
    key: string,
    op: "set" | "unset" | "touch" | "create",
    ttl: number,
    onlyExisting: boolean,
    cap: number,
    expectations: ReadonlyArray<string>,
    rest: ReadonlyArray<string>
  ) =>
    Effect.map(
      redis.runScript(operation, clusterWriteSession, [key, tombstoneKey(prefix, id), leftKey(prefix, id)], [
        op,
        id,
        ttl,
        onlyExisting ? "1" : "0",
        cap,
        nrefs,
        ...references,
        ...expectations,
        ...rest
      ]),
      parseWriteReply
    )

  /**
   * The write protocol (steps 1–4) for set / setExisting / unset / touch.
   * Returns the script's status: 1 written, 0 no session (only with `onlyExisting`),
   * REVOKED: the session would have been created, but its id was revoked (tombstone).
   */
  const write = (operation: string, id: string, change: Write, ttl: number, onlyExisting: boolean): Effect.Effect<number, RedisError> =>
    bounded(operation, Effect.gen(function* () {
      const key = hashKey(id)
      // Which referenced fields this write sets (value) or removes (null); the others it keeps.
      const written = new Map<number, Value>()
      if (change.op === "set") {
        for (let i = 0; i < change.pairs.length; i += 2) {
          const index = referenceIndex.get(change.pairs[i]!)
          if (index !== undefined) written.set(index, change.pairs[i + 1]!)
        }
      } else if (change.op === "unset") {
        for (const field of change.fields) {
          const index = referenceIndex.get(field)
          if (index !== undefined) written.set(index, null)
        }
      }
      const rest = change.op === "set" ? change.pairs : change.op === "unset" ? change.fields : []

      // 1. read
      const before = yield* readState(operation, id)
      if (onlyExisting && before.expireAt === NO_SESSION) return 0
      let current = before.values
      const candidates: Candidates = new Map()

      for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
        const after = current.map((value, i) => (written.has(i) ? written.get(i)! : value))
        const expectations = current.map((value, i) => (written.has(i) ? "?" : value === null ? "-" : `=${value}`))
        // 2. pre-add
        const cap = yield* preAdd(operation, id, after, ttl, candidates)
        // 3. write
        const reply = yield* runWriteScript(operation, id, key, change.op, ttl, onlyExisting, cap, expectations, rest)
        if (reply.status === -1) {
          // A concurrent write changed a field this one keeps: retry against what is there now.
          current = reply.old
          if (onlyExisting && reply.state.expireAt === NO_SESSION) {
            yield* reconcile(operation, id, candidates, missing)
            return 0
          }
          continue
        }
        if (reply.status === REVOKED) {
          yield* reconcile(operation, id, candidates, missing)
          return REVOKED
        }
        // 4. reconcile
        reply.old.forEach((value, index) => addCandidate(candidates, index, value))
        yield* reconcile(operation, id, candidates, reply.state)
        return reply.status
      }
      yield* Effect.flatMap(readState(operation, id), (state) => reconcile(operation, id, candidates, state))
      return yield* Effect.fail(new RedisError({ operation, cause: new ClusterWriteConflict(MAX_WRITE_ATTEMPTS) }))
    }))

  /** Deletes one session (when `field` is given, only if it holds `value`) and settles its sets. */
  const deleteOne = (operation: string, id: string, field: string, value: string): Effect.Effect<boolean, RedisError> =>
    Effect.flatMap(
      redis.runScript(operation, clusterDeleteSession, [hashKey(id), leftKey(prefix, id)], [field, value, nrefs, ...references]),
      (reply) => {
        const items = asArray(reply)
        const status = Number(items[0])
        const candidates: Candidates = new Map()
        const values = references.map((_, i) => asValue(items[2 + i]))
        if (status === 1) values.forEach((v, index) => addCandidate(candidates, index, v))
        const index = referenceIndex.get(field)
        if (index !== undefined) addCandidate(candidates, index, value)
        const state: SessionState = status === -1 ? { expireAt: Number(items[1]), values } : missing
        return Effect.as(reconcile(operation, id, candidates, state), status === 1)
      }
    )

  const scanReference = <A>(
    operation: string,
    field: string,
    value: SessionValue,
    initial: A,
    onIds: (index: number, encoded: string, ids: ReadonlyArray<string>, acc: A) => Effect.Effect<A, RedisError>,
    revoking = false
  ): Effect.Effect<A, RedisError | InvalidSessionData> => {
    const encoded = checkReference(field, value)
    if (typeof encoded !== "string") return Effect.fail(encoded)
    const index = referenceIndex.get(field)!
    const key = revoking ? revokingSetKey(index, encoded) : setKey(index, encoded)
    // Not bounded as a whole (a scan of 100 000+ members may take longer than `timeout`):
    // each of its calls is.
    const page = (cursor: string, acc: A): Effect.Effect<A, RedisError> =>
      Effect.flatMap(redis.use(operation, (client) => client.sscan(key, cursor, "COUNT", SCAN_BATCH)), ([next, ids]) => {
        const processed = ids.length === 0 ? Effect.succeed(acc) : onIds(index, encoded, ids, acc)
        return next === "0" ? processed : Effect.flatMap(processed, (acc2) => page(next, acc2))
      })
    return page("0", initial)
  }

  const checkId = (id: string): InvalidSessionId | undefined => checkSessionId(id)

  // `timeout` bounds a whole operation, not each of its round trips (about five for a
  // write). Stopping a protocol part-way is as safe as a crash there (see the top).
  const bounded = <A, E>(operation: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | RedisError> =>
    Effect.timeoutFail(effect, {
      duration: redis.timeoutMillis,
      onTimeout: () => new RedisError({ operation, cause: new RedisTimeoutError(redis.timeoutMillis) })
    })

  const setLike = (
    operation: string,
    id: string,
    values: unknown,
    maxAge: MaxAgeInput | null | undefined,
    onlyExisting: boolean
  ): Effect.Effect<boolean, SessionStoreError> => {
    const checked = checkWrite(id, values, maxAge)
    if (!("pairs" in checked)) return Effect.fail(checked)
    return Effect.flatMap(write(operation, id, { op: "set", pairs: checked.pairs }, checked.ttl, onlyExisting), (status) =>
      status === REVOKED
        ? Effect.fail(new InvalidSessionId({ reason: "the session was revoked" }))
        : Effect.succeed(status === 1)
    )
  }

  return {
    ...standalone,

    set: (id, values, maxAge) => Effect.asVoid(setLike("SessionStore.set", id, values, maxAge, false)),

    setExisting: (id, values, maxAge) => setLike("SessionStore.setExisting", id, values, maxAge, true),

    unset: (id, fields, maxAge) => {
      const badId = checkId(id)
      if (badId !== undefined) return Effect.fail(badId)
      const list = checkFieldList(fields, limits, { allowId: false })
      if (!Array.isArray(list)) return Effect.fail(list)
      const ttl = ttlFor(maxAge)
      if (typeof ttl !== "number") return Effect.fail(ttl)
      return Effect.map(write("SessionStore.unset", id, { op: "unset", fields: list }, ttl, true), (status) => status === 1)
    },

    touch: (id, maxAge) => {
      const badId = checkId(id)
      if (badId !== undefined) return Effect.fail(badId)
      const ttl = ttlFor(maxAge)
      if (typeof ttl !== "number") return Effect.fail(ttl)
      return Effect.map(write("SessionStore.touch", id, { op: "touch" }, ttl, true), (status) => status === 1)
    },

    delete: (id) => {
      const badId = checkId(id)
      if (badId !== undefined) return Effect.fail(badId)
      return bounded("SessionStore.delete", deleteOne("SessionStore.delete", id, "", ""))
    },

    regenerate: (id, newId, maxAge, options) => {
      const badId = checkId(id) ?? (newId === undefined ? undefined : checkId(newId))
      if (badId !== undefined) return Effect.fail(badId)
      const requested = ttlFor(maxAge)
      if (typeof requested !== "number") return Effect.fail(requested)
      const secret = rotatedSecret(options?.csrfSecret)
      if (typeof secret !== "string") return Effect.fail(secret)
      const target = newId ?? randomBytes(byteLength).toString("base64url")
      if (target === id) return Effect.fail(new InvalidSessionId({ reason: "the new id must differ from the old one" }))
      // No maxAge (v3: any falsy one): the new hash keeps the old one's remaining lifetime.
      const keep = maxAge === undefined || maxAge === null || maxAge === 0 || maxAge === ""
      const operation = "SessionStore.regenerate"
      return bounded(operation, Effect.gen(function* () {
        // Copy: the old hash and its expiry from one atomic read.
        const items = asArray(yield* redis.runScript(operation, clusterRegenerateSnapshot, [hashKey(id), leftKey(prefix, id)], []))
        const expireAt = Number(items[0])
        if (expireAt === NO_SESSION) return undefined
        const remaining = Number(items[1])
        // The referenced values the session left (its left record): a revoke of one of them
        // may have started before it left.
        const nleft = Number(items[2])
        const left: Array<readonly [number, string]> = []
        for (let i = 3; i < 3 + nleft; i++) {
          const entry = String(items[i])
          const colon = entry.indexOf(":")
          const index = referenceIndex.get(entry.slice(0, colon))
          if (colon > 0 && index !== undefined) left.push([index, entry.slice(colon + 1)])
        }
        const snapshot = new Map<string, string>()
        for (let i = 3 + nleft; i + 1 < items.length; i += 2) snapshot.set(String(items[i]), String(items[i + 1]))
        // Login rotates the CSRF secret of a session that has one.
        if (snapshot.has(CSRF_SECRET_FIELD)) snapshot.set(CSRF_SECRET_FIELD, secret)
        snapshot.delete(ID_FIELD)
        const pairs = [...snapshot].flat()
        const after = references.map((field) => snapshot.get(field) ?? null)
        // Keeping the lifetime: sets extended by the remaining TTL (from now, so past
        // `expireAt`), and the new hash capped at `expireAt`, so every set outlives it.
        const kept = keep && expireAt >= 0 && remaining > 0
        const ttl = kept ? remaining : requested
        // The new id joins its sets before its hash exists…
        const candidates: Candidates = new Map()
        // (refused when a revoke of a value it holds or left has frozen that set with the old
        // id in it: the session is being revoked, and gets no new id)…
        const setsCap = yield* preAdd(operation, target, after, ttl, candidates, id, left)
        if (setsCap === REVOKED) {
          yield* reconcile(operation, target, candidates, missing)
          return undefined
        }
        const cap = kept && (setsCap < 0 || expireAt < setsCap) ? expireAt : setsCap
        // …the new hash is written only if the id is free (and was not revoked)…
        const created = yield* runWriteScript(operation, target, hashKey(target), "create", ttl, false, cap, none.map(() => "?"), pairs)
        if (created.status === REVOKED) {
          yield* reconcile(operation, target, candidates, missing)
          return undefined
        }
        if (created.status !== 1) {
          yield* reconcile(operation, target, candidates, created.status === -2 ? { ...created.state, values: created.old } : missing)
          return yield* Effect.fail(new InvalidSessionId({ reason: "the new id is already in use" }))
        }
        // …then the old hash goes, then the old id leaves its sets.
        yield* deleteOne(operation, id, "", "")
        yield* reconcile(operation, target, candidates, created.state)
        return target
      }))
    },

    // The value's set, then its revoking set: a revoke that was interrupted (or is running)
    // left the sessions it had not reached there, live and holding the value. Members of
    // the revoking set are checked but never removed (the revoke relies on them).
    listByReference: (field, value) =>
      Effect.gen(function* () {
        const seen = new Set<string>()
        const operation = "SessionStore.listByReference"
        const check = (prune: boolean) => (index: number, encoded: string, ids: ReadonlyArray<string>, acc: Set<string>) =>
          Effect.as(
            Effect.forEach(
              ids,
              (id) =>
                Effect.flatMap(readState(operation, id), (state) => {
                  if (state.values[index] === encoded) {
                    acc.add(id)
                    return Effect.void
                  }
                  return prune ? reconcile(operation, id, new Map([[index, new Set([encoded])]]), state) : Effect.void
                }),
              { concurrency: ID_CONCURRENCY, discard: true }
            ),
            acc
          )
        yield* scanReference(operation, field, value, seen, check(true))
        yield* scanReference(operation, field, value, seen, check(false), true)
        return Array.from(seen)
      }),

    // 1. freeze: the value's set moves to its revoking set (value's slot), t0 = server time.
    // 2. every member of the revoking set, each on its own slot (clusterRevokeSession): deleted
    //    when it holds the value or left it since t0 - margin, tombstoned when it has no hash.
    //    The revoking set keeps its members while the scan runs and `grace` after it, so an
    //    in-flight regenerate of a member is refused (clusterAddReference).
    deleteByReference: (field, value) => {
      const encoded = checkReference(field, value)
      if (typeof encoded !== "string") return Effect.fail(encoded)
      const operation = "SessionStore.deleteByReference"
      const index = referenceIndex.get(field)!
      const revoking = revokingSetKey(index, encoded)
      const keepAlive = (final: boolean) => redis.runScript(operation, clusterKeepRevoking, [revoking], [grace, final ? "1" : "0"])
      const revokeOne = (id: string, since: number) =>
        Effect.flatMap(
          redis.runScript(
            operation,
            clusterRevokeSession,
            [hashKey(id), tombstoneKey(prefix, id), leftKey(prefix, id)],
            [field, encoded, since, grace, nrefs, ...references]
          ),
          (reply) => {
            const items = asArray(reply)
            if (Number(items[0]) !== 1) return Effect.succeed(false)
            const candidates: Candidates = new Map()
            references.forEach((_, i) => addCandidate(candidates, i, asValue(items[1 + i])))
            // A write in flight may have added it to the value's new set meanwhile.
            addCandidate(candidates, index, encoded)
            return Effect.as(reconcile(operation, id, candidates, missing), true)
          }
        )
      // Not bounded as a whole (100 000+ members may take longer than `timeout`): each call is.
      const page = (since: number, cursor: string, count: number): Effect.Effect<number, RedisError> =>
        Effect.flatMap(keepAlive(false), () =>
          Effect.flatMap(redis.use(operation, (client) => client.sscan(revoking, cursor, "COUNT", SCAN_BATCH)), ([next, ids]) => {
            const processed = Effect.map(
              Effect.forEach(ids, (id) => revokeOne(id, since), { concurrency: ID_CONCURRENCY }),
              (deleted) => count + deleted.filter(Boolean).length
            )
            return next === "0" ? processed : Effect.flatMap(processed, (n) => page(since, next, n))
          })
        )
      return Effect.gen(function* () {
        const t0 = Number(yield* redis.runScript(operation, clusterFreezeReference, [setKey(index, encoded), revoking], []))
        const count = yield* page(t0 - margin, "0", 0)
        yield* keepAlive(true)
        return count
      })
    }
  }
}
