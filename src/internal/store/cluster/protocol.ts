// The steps of the store's protocol on a Redis Cluster (its operations: cluster.ts).
//
// On a cluster the session hash `${prefix}:{${id}}` and its reference sets
// `${prefix}:${field}:{${value}}` live in different hash slots (the braces are hash
// tags: the slot follows the id, or the value), so no script may touch them together. Each write is therefore a short protocol of single-slot
// steps, ordered so that a live session is never missing from the set of a value
// it holds, even when the protocol stops half-way (see the README, "Redis Cluster"):
//
//   1. read     the referenced fields (which sets the session is in now): not a step
//               of its own, step 3's reply when the write guessed wrong (see `write`)
//   2. pre-add  SADD the id to the set of every value the session will hold,
//               extending each set to live at least `ttl` from now
//   3. write    one script on the hash slot: compare-and-set on the referenced
//               fields the write keeps, write, PEXPIREAT capped by the sets'
//               expiries; returns the old and new referenced values
//   4. reconcile  SREM the id from sets of values it no longer holds, re-assert
//               the sets of the values it holds, then re-read the hash and repeat
//               until the read agrees with what was applied
//
// Every step is one command, or several sent at once (`all`): the Promise facade drives
// a protocol with callbacks, without a fiber (run.ts, `stepwise`).
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
import { Effect } from "effect"
import type { RedisClientService } from "../../../RedisClient.js"
import { ClusterWriteConflict, RedisError, RedisTimeoutError } from "../../../SessionError.js"
import { leftKey, referenceKey, revokingKey, sessionKey, tombstoneKey } from "../../keys.js"
import { clusterAddReference } from "../lua/clusterAddReference.js"
import { clusterDeleteSession } from "../lua/clusterDeleteSession.js"
import { clusterReadState } from "../lua/clusterReadState.js"
import { clusterWriteSession } from "../lua/clusterWriteSession.js"
import type { StoreRules } from "../plan.js"
import { SCAN_BATCH } from "../plan.js"
import type { Action, Command } from "../action.js"
import { all, andThen, done, failed, map, part, script } from "../action.js"
import { toEffect } from "../run.js"

/** Ids of one page checked at once (one command each, routed to each id's slot). */
export const ID_CONCURRENCY = 64
/** Compare-and-set attempts of a write before it fails with `RedisError`. */
const MAX_WRITE_ATTEMPTS = 16
/** Reconcile rounds before giving up on removals (stale members are then left to readers). */
const MAX_RECONCILE_ROUNDS = 32
export const NO_SESSION = -2
/** clusterAddReference: the ancestor (a regenerate's old id) is being revoked. clusterWriteSession: the id was revoked. */
export const REVOKED = -3

export type Value = string | null

/** A session hash as one atomic read saw it: absolute expiry (unix ms, -2 = no session) and referenced values. */
export interface SessionState {
  readonly expireAt: number
  readonly values: ReadonlyArray<Value>
}

/** Reference index → values whose set may hold the id: what a reconcile must settle. */
export type Candidates = Map<number, Set<string>>

export const addCandidate = (candidates: Candidates, index: number, value: Value) => {
  if (value === null) return
  const values = candidates.get(index)
  if (values === undefined) candidates.set(index, new Set([value]))
  else values.add(value)
}

export const asValue = (reply: unknown): Value => (reply === null || reply === undefined ? null : String(reply))

export const asArray = (reply: unknown): ReadonlyArray<unknown> => (Array.isArray(reply) ? reply : [])

/** What the write step did: its status, the referenced values before, the hash after, and its TTL then (ms; status 1). */
export interface WriteReply {
  readonly status: number
  readonly state: SessionState
  readonly old: ReadonlyArray<Value>
  readonly ttl: number | undefined
}

type Write =
  | { readonly op: "set"; readonly pairs: ReadonlyArray<string> }
  | { readonly op: "unset"; readonly fields: ReadonlyArray<string> }
  | { readonly op: "touch" }
  // A rolling read's renewal: the lifetime is extended, never shortened.
  | { readonly op: "renew" }

/**
 * The store over a cluster client: `standalone` supplies everything that touches
 * one key only (`get`, ids, key names); every operation that involves reference
 * sets is replaced by its cluster protocol.
 */

/** The protocol's steps over one store's keys; the operations (cluster.ts) compose them. */
export const makeProtocol = (rules: StoreRules, redis: RedisClientService) => {
  const { prefix, references, controls } = rules
  const nrefs = references.length
  const controlArgs = [controls.on ? "1" : "0", controls.absoluteMaxAgeMillis ?? -1] as const
  const referenceIndex = new Map(references.map((field, i) => [field, i] as const))
  const none: ReadonlyArray<Value> = references.map(() => null)
  const missing: SessionState = { expireAt: NO_SESSION, values: none }
  const notWritten: WriteReply = { status: 0, state: missing, old: none, ttl: undefined }

  const hashKey = (id: string) => sessionKey(prefix, id)
  const setKey = (index: number, value: string) => referenceKey(prefix, references[index]!, value)
  const revokingSetKey = (index: number, value: string) => revokingKey(prefix, references[index]!, value)
  // A revoke keeps its revoking set `grace` ms after it returns, and tombstones the ids it
  // revoked as long: longer than any operation in flight may take (each is bounded by
  // `timeout`). `margin`: how long before the revoke's start a session may have left the
  // value and still be revoked (a write in flight, clock skew between nodes).
  const grace = Math.max(60_000, 2 * redis.timeoutMillis)
  const margin = redis.timeoutMillis + 1_000

  const parseState = (reply: unknown): SessionState => {
    const items = asArray(reply)
    const expireAt = Number(items[0])
    if (expireAt === NO_SESSION) return missing
    return { expireAt, values: references.map((_, i) => asValue(items[1 + i])) }
  }

  const readState = (operation: string, id: string): Action<SessionState, never> =>
    script(operation, clusterReadState, [hashKey(id)], [nrefs, ...references], (reply) => done(parseState(reply)))

  /**
   * SADD + extend (see clusterAddReference), to send with others; its reply: the set's absolute
   * expiry, -1 for none, -2 nothing added, -3 (REVOKED) refused: `ancestor` is in the value's revoking set.
   */
  const addReference = (
    operation: string,
    index: number,
    value: string,
    id: string,
    mode: "ttl" | "at" | "check",
    amount: number,
    ancestor = ""
  ) => part(operation, clusterAddReference, undefined, [setKey(index, value), revokingSetKey(index, value)], [id, mode, amount, ancestor])

  const removeReference = (operation: string, index: number, value: string, id: string) =>
    part(operation, undefined, "srem", [setKey(index, value)], [id])

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
   *
   * `kept` (after a write: the values it read before writing): a value the hash held before
   * the write and still holds is not added again in the first round. The write pre-added it,
   * and an SREM racing with that came from someone who saw the hash without it, then wrote
   * it back or read the hash again after the SREM; either one adds it back.
   */
  const reconcile = (
    operation: string,
    id: string,
    candidates: Candidates,
    state: SessionState,
    kept?: ReadonlyArray<Value>
  ): Action<void, never> => {
    const round = (current: SessionState, n: number): Action<void, never> => {
      const steps: Array<Command<unknown, never>> = []
      for (const [index, values] of candidates) {
        for (const value of values) {
          if (current.expireAt !== NO_SESSION && current.values[index] === value) {
            if (n > 0 || kept?.[index] !== value) steps.push(addReference(operation, index, value, id, "at", current.expireAt))
          } else if (n < MAX_RECONCILE_ROUNDS) {
            steps.push(removeReference(operation, index, value, id))
          }
        }
      }
      if (steps.length === 0) return done(undefined)
      if (n >= MAX_RECONCILE_ROUNDS) return all(operation, steps, () => done(undefined))
      return all(operation, steps, () =>
        andThen(readState(operation, id), (next) => (sameFor(candidates, current, next) ? done(undefined) : round(next, n + 1)))
      )
    }
    return candidates.size === 0 ? done(undefined) : round(state, 0)
  }

  /**
   * Step 2: the id joins the set of every value in `after`. Returns the cap for step 3
   * (-1 = none), or REVOKED when `ancestor` (a regenerate's old id) is in the revoking set
   * of one of those values or of one it left (`left`: index → values): nothing is added to
   * that set then, and the caller takes back the others. All in one round trip.
   */
  const preAdd = (
    operation: string,
    id: string,
    after: ReadonlyArray<Value>,
    ttl: number,
    candidates: Candidates,
    ancestor = "",
    left: ReadonlyArray<readonly [number, string]> = []
  ): Action<number, never> => {
    const adds: Array<Command<unknown, never>> = []
    after.forEach((value, index) => {
      if (value === null) return
      addCandidate(candidates, index, value)
      adds.push(addReference(operation, index, value, id, "ttl", ttl, ancestor))
    })
    for (const [index, value] of left) adds.push(addReference(operation, index, value, id, "check", 0, ancestor))
    return all(operation, adds, (replies) => {
      const expiries = replies.map(Number)
      if (expiries.includes(REVOKED)) return done(REVOKED)
      const finite = expiries.filter((at) => at >= 0)
      return done(finite.length === 0 ? -1 : Math.min(...finite))
    })
  }

  const parseWriteReply = (reply: unknown): WriteReply => {
    const items = asArray(reply)
    const status = Number(items[0])
    const expireAt = Number(items[1])
    const old = references.map((_, i) => asValue(items[2 + i]))
    const values = references.map((_, i) => asValue(items[2 + nrefs + i]))
    const ttl = status === 1 && items.length > 2 + 2 * nrefs ? Number(items[2 + 2 * nrefs]) : undefined
    return { status, old, state: expireAt === NO_SESSION ? missing : { expireAt, values }, ttl }
  }

  const runWriteScript = (
    operation: string,
    id: string,
    key: string,
    op: Write["op"] | "create",
    ttl: number,
    onlyExisting: boolean,
    cap: number,
    expectations: ReadonlyArray<string>,
    rest: ReadonlyArray<string>
  ): Action<WriteReply, never> =>
    script(
      operation,
      clusterWriteSession,
      [key, tombstoneKey(prefix, id), leftKey(prefix, id)],
      [op, id, ttl, onlyExisting ? "1" : "0", cap, ...controlArgs, nrefs, ...references, ...expectations, ...rest],
      (reply) => done(parseWriteReply(reply))
    )

  /**
   * The write protocol (steps 1–4) for set / setExisting / unset / touch / renew.
   * Returns the script's reply; its status: 1 written, 0 no session (only with `onlyExisting`),
   * REVOKED: the session would have been created, but its id was revoked (tombstone).
   *
   * Step 1 is folded into step 3: the first attempt assumes the session holds no referenced
   * value it keeps (so it pre-adds only the values it writes), and the write script, finding
   * one, writes nothing and answers the values it holds, as the read would have. So a write
   * to a session that holds none costs no read, and one to a session that does, none more.
   */
  const write = (operation: string, id: string, change: Write, ttl: number, onlyExisting: boolean): Action<WriteReply, RedisError> => {
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
    const candidates: Candidates = new Map()

    // Attempt 0 is the guess; 1 to MAX_WRITE_ATTEMPTS know what the hash held.
    const attempt = (current: ReadonlyArray<Value>, n: number): Action<WriteReply, RedisError> => {
      if (n > MAX_WRITE_ATTEMPTS) {
        return andThen(readState(operation, id), (state) =>
          andThen(reconcile(operation, id, candidates, state), () =>
            failed(new RedisError({ operation, cause: new ClusterWriteConflict(MAX_WRITE_ATTEMPTS) }))
          )
        )
      }
      const after = current.map((value, i) => (written.has(i) ? written.get(i)! : value))
      const expectations = current.map((value, i) => (written.has(i) ? "?" : value === null ? "-" : `=${value}`))
      // 2. pre-add, then 3. write
      return andThen(preAdd(operation, id, after, ttl, candidates), (cap) =>
        andThen(runWriteScript(operation, id, key, change.op, ttl, onlyExisting, cap, expectations, rest), (reply) => {
          if (reply.status === -1) {
            // A field this write keeps holds another value (a concurrent write, or the
            // guess): retry against what is there now.
            if (onlyExisting && reply.state.expireAt === NO_SESSION) {
              return map(reconcile(operation, id, candidates, missing), () => notWritten)
            }
            return attempt(reply.old, n + 1)
          }
          // (The step may have deleted a session past its absolute deadline: its old values too.)
          reply.old.forEach((value, index) => addCandidate(candidates, index, value))
          if (reply.status === REVOKED) return map(reconcile(operation, id, candidates, missing), () => reply)
          // 4. reconcile
          return map(reconcile(operation, id, candidates, reply.state, reply.status === 1 ? reply.old : undefined), () => reply)
        })
      )
    }
    return attempt(none, 0)
  }

  /** Deletes one session (when `field` is given, only if it holds `value`) and settles its sets. */
  const deleteOne = (operation: string, id: string, field: string, value: string): Action<boolean, never> =>
    script(operation, clusterDeleteSession, [hashKey(id), leftKey(prefix, id)], [field, value, nrefs, ...references], (reply) => {
      const items = asArray(reply)
      const status = Number(items[0])
      const candidates: Candidates = new Map()
      const values = references.map((_, i) => asValue(items[2 + i]))
      if (status === 1) values.forEach((v, index) => addCandidate(candidates, index, v))
      const index = referenceIndex.get(field)
      if (index !== undefined) addCandidate(candidates, index, value)
      const state: SessionState = status === -1 ? { expireAt: Number(items[1]), values } : missing
      return map(reconcile(operation, id, candidates, state), () => status === 1)
    })

  /** A step of the protocol inside an Effect (a scan's): each of its calls bounded by `timeout` on its own. */
  const effectOf = <A, E>(action: Action<A, E>): Effect.Effect<A, E | RedisError> => toEffect(redis, action, Number.POSITIVE_INFINITY)

  /** SSCAN of a set, page by page, each page's ids handed to `onIds`. */
  const scan = <A>(
    operation: string,
    key: string,
    initial: A,
    onIds: (ids: ReadonlyArray<string>, acc: A) => Effect.Effect<A, RedisError>
  ): Effect.Effect<A, RedisError> => {
    // Not bounded as a whole (a scan of 100 000+ members may take longer than `timeout`):
    // each of its calls is.
    const page = (cursor: string, acc: A): Effect.Effect<A, RedisError> =>
      Effect.flatMap(
        redis.use(operation, (client) => client.sscan(key, cursor, "COUNT", SCAN_BATCH)),
        ([next, ids]) => {
          const processed = ids.length === 0 ? Effect.succeed(acc) : onIds(ids, acc)
          return next === "0" ? processed : Effect.flatMap(processed, (acc2) => page(next, acc2))
        }
      )
    return page("0", initial)
  }

  // `timeout` bounds a whole operation, not each of its round trips (a protocol of
  // commands: their calls share it, see run.ts). Stopping a protocol part-way is as safe
  // as a crash there (see the top).
  const bounded = <A, E>(operation: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | RedisError> =>
    Effect.timeoutFail(effect, {
      duration: redis.timeoutMillis,
      onTimeout: () => new RedisError({ operation, cause: new RedisTimeoutError(redis.timeoutMillis) })
    })

  return {
    nrefs,
    referenceIndex,
    none,
    missing,
    hashKey,
    setKey,
    revokingSetKey,
    grace,
    margin,
    readState,
    reconcile,
    preAdd,
    runWriteScript,
    write,
    deleteOne,
    effectOf,
    scan,
    bounded
  }
}

export type Protocol = ReturnType<typeof makeProtocol>
