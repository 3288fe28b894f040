// The account controls on a Redis Cluster (their rules: controls.ts): a Session's read
// (last-seen, rolling renewal), `lifetime`, the session list, `deleteHolding` and the
// per-value caps, as single-slot steps over the protocol (protocol.ts).
//
// - A read is one script on the hash's slot. When its update is due (at most once per
//   `rollingInterval`: the script records last-seen atomically, so concurrent reads elect
//   one), it records last-seen, the creation time and the client values there, and a
//   rolling store then renews the TTL with the write protocol ("renew": the sets are
//   extended first, the hash is capped by them, never shortened).
// - A cap is enforced by the write that made the session join the value: after its write,
//   the value's members (SMEMBERS, on the value's slot), each one's state (on its slot),
//   then conditional deletes of the least recently active beyond `maxSessions`, the writer
//   itself included (see `capValue`).
import { Effect } from "effect"
import type { RedisClientService } from "../../../RedisClient.js"
import type { RedisError } from "../../../SessionError.js"
import { leftKey } from "../../keys.js"
import { assignField } from "../../validate.js"
import type { Action } from "../action.js"
import { checked, checkedData, command, done, fromEffect, map, script } from "../action.js"
import type { CapCandidate } from "../controls.js"
import { absoluteDeadline, announceEvictions, clientPairs, evictionOrder, sessionInfo, sessionLifetime, storedTime } from "../controls.js"
import { clusterReadSession } from "../lua/clusterReadSession.js"
import { clusterSessionInfo } from "../lua/clusterSessionInfo.js"
import type { StoreRules } from "../plan.js"
import { SCAN_BATCH, sessionFromFields } from "../plan.js"
import { stepwise } from "../run.js"
import type { ReadResult, SessionPage, StoreActions } from "../service.js"
import { getCommand } from "../standalone.js"
import type { SessionData, SessionEviction, SessionInfo, SessionLifetime, SessionStoreError } from "../types.js"
import type { Candidates, Protocol, Value, WriteReply } from "./protocol.js"
import { addCandidate, asArray, asValue, ID_CONCURRENCY } from "./protocol.js"

/** clusterReadSession: the session was past its absolute deadline (it is deleted). */
const DEAD = -4

/** One session's state, as clusterSessionInfo read it. */
interface Info {
  readonly id: string
  /** Absolute expiry, unix ms; -1: no TTL. */
  readonly expireAt: number
  readonly now: number
  readonly value: Value
  readonly createdAt: Value
  readonly lastSeenAt: Value
  readonly userAgent: Value
  readonly ip: Value
}

export const makeClusterSessions = (rules: StoreRules, redis: RedisClientService, protocol: Protocol) => {
  const { prefix, references, controls } = rules
  const { nrefs, referenceIndex, none, missing, hashKey, setKey, reconcile, write, deleteOne, effectOf, bounded } = protocol
  const absolute = controls.absoluteMaxAgeMillis ?? -1

  const parseInfo = (id: string, reply: unknown): Info | undefined => {
    const items = asArray(reply)
    const expireAt = Number(items[0])
    if (expireAt === -2) return undefined
    const [value, createdAt, lastSeenAt, userAgent, ip] = [2, 3, 4, 5, 6].map((i) => asValue(items[i]))
    return {
      id,
      expireAt,
      now: Number(items[1]),
      value: value!,
      createdAt: createdAt!,
      lastSeenAt: lastSeenAt!,
      userAgent: userAgent!,
      ip: ip!
    }
  }

  const info = (operation: string, id: string, field: string): Effect.Effect<Info | undefined, RedisError> =>
    Effect.map(redis.runScript(operation, clusterSessionInfo, [hashKey(id)], [field]), (reply) => parseInfo(id, reply))

  const deadlineOf = (found: Info) => absoluteDeadline(controls, storedTime(found.createdAt))
  const pastDeadline = (found: Info) => {
    const deadline = deadlineOf(found)
    return deadline !== undefined && deadline <= found.now
  }

  /** The member `found` (of the set of field `index` = `value`) checked: live and holding it, or else settled. */
  const checkMember = (
    operation: string,
    id: string,
    index: number,
    value: string,
    found: Info | undefined
  ): Effect.Effect<Info | undefined, RedisError> => {
    if (found !== undefined && found.value === value) {
      // Past its absolute deadline (the option was shortened since its last write): dead.
      if (!pastDeadline(found)) return Effect.succeed(found)
      return Effect.as(effectOf(deleteOne(operation, id, references[index]!, value)), undefined)
    }
    // Gone, or holds another value: prune it from the set, as listByReference does.
    const values = [...none]
    if (found !== undefined) values[index] = found.value
    const state = found === undefined ? missing : { expireAt: found.expireAt, values }
    const candidates: Candidates = new Map([[index, new Set([value])]])
    return Effect.as(effectOf(reconcile(operation, id, candidates, state)), undefined)
  }

  const expiresAtOf = (found: Info) => (found.expireAt >= 0 ? found.expireAt : undefined)

  const sessionInfoOf = (found: Info): SessionInfo => sessionInfo(controls, found.id, found, expiresAtOf(found))

  const announce = (evictions: ReadonlyArray<SessionEviction>) =>
    Effect.sync(() =>
      announceEvictions(
        rules.onEvict,
        evictions.filter((eviction) => eviction.evicted > 0)
      )
    )

  /**
   * The cap of field `index` for `value`, which `id` has just joined: every live holder, the
   * writer included, ranked by last activity (last-seen, else creation, else 0; ties: the
   * smaller id first, as `evictionOrder`); all but the `maxSessions` most recent are deleted,
   * each only if it still holds the value. One order for every writer, the writer not
   * favoured, so concurrent joins agree on whom to keep: at quiescence the value holds
   * exactly its `maxSessions` most recently active sessions (README, "Redis Cluster"). In
   * sequential writes the writer is the most recent (its last-seen is the newest time) but
   * for a tie in the same millisecond or clock skew between nodes.
   */
  const capValue = (operation: string, id: string, index: number, value: string): Effect.Effect<SessionEviction, RedisError> =>
    Effect.gen(function* () {
      const field = references[index]!
      const max = controls.maxSessions[index]!
      const members = new Set(yield* redis.use(operation, (client) => client.smembers(setKey(index, value))))
      members.add(id)
      const found = yield* Effect.forEach(
        members,
        (member) => Effect.flatMap(info(operation, member, field), (state) => checkMember(operation, member, index, value, state)),
        { concurrency: ID_CONCURRENCY }
      )
      const live: Array<CapCandidate> = []
      for (const state of found) {
        if (state !== undefined) live.push({ id: state.id, lastSeenAt: storedTime(state.lastSeenAt) ?? storedTime(state.createdAt) ?? 0 })
      }
      // evictionOrder's order over every holder, the writer among them (hence max + 1).
      const victims = evictionOrder(live, max + 1)
      if (victims.length === 0) return { field, value, evicted: 0 }
      const evicted = yield* Effect.forEach(victims, (victim) => effectOf(deleteOne(operation, victim, field, value)), {
        concurrency: ID_CONCURRENCY
      })
      return { field, value, evicted: evicted.filter(Boolean).length }
    })

  const capped = controls.maxSessions.some((max) => max > 0)

  /** After a write that succeeded: the caps of every value the session joined, then `onEvict`. */
  const enforceCaps = (operation: string, id: string, reply: WriteReply): Action<void, RedisError> => {
    if (!capped || reply.status !== 1) return done(undefined)
    const joined: Array<readonly [number, string]> = []
    controls.maxSessions.forEach((max, index) => {
      const value = reply.state.values[index]
      if (max > 0 && value !== null && value !== undefined && value !== reply.old[index]) joined.push([index, value])
    })
    if (joined.length === 0) return done(undefined)
    return fromEffect(
      bounded(
        operation,
        Effect.flatMap(
          Effect.forEach(joined, ([index, value]) => capValue(operation, id, index, value)),
          announce
        )
      )
    )
  }

  const empty: ReadResult = { session: {}, renewedTtl: undefined }

  const read: StoreActions["read"] = (id, fields, client) =>
    checked(rules.get(id, fields), (plan): Action<ReadResult, SessionStoreError> => {
      if (!controls.observesReads) return map(getCommand(prefix, plan, rules), (session) => ({ session, renewedTtl: undefined }))
      const operation = "SessionStore.read"
      const pairs = clientPairs(controls, client)
      const args = [controls.rollingIntervalMillis, absolute, nrefs, ...references, pairs.length, ...pairs, ...(plan.fields ?? [])]
      return script(operation, clusterReadSession, [hashKey(id), leftKey(prefix, id)], args, (reply): Action<ReadResult, RedisError> => {
        const items = asArray(reply)
        const status = Number(items[0])
        if (status === 0) return done(empty)
        if (status === DEAD) {
          // Deleted by the read: the id leaves the sets of the values it held.
          const candidates: Candidates = new Map()
          references.forEach((_, i) => addCandidate(candidates, i, asValue(items[2 + i])))
          return stepwise(redis, () => map(reconcile(operation, id, candidates, missing), () => empty))
        }
        const now = Number(items[1])
        const data = items.slice(3)
        let session: SessionData
        if (plan.fields === undefined) {
          session = {}
          for (let i = 0; i + 1 < data.length; i += 2) assignField(session, String(data[i]), String(data[i + 1]))
        } else session = sessionFromFields(plan.fields, data.map(asValue))
        const answer = rules.alive(plan, session, now)
        if (Number(items[2]) !== 1 || !controls.rolling) return done({ session: answer, renewedTtl: undefined })
        // Due and rolling: the lifetime is renewed to maxAge (never shortened), sets first.
        return stepwise(redis, () =>
          map(write(operation, id, { op: "renew" }, rules.maxAgeMillis, true), (written) => ({
            session: answer,
            renewedTtl: written.status === 1 ? written.ttl : undefined
          }))
        )
      })
    })

  const lifetime: StoreActions["lifetime"] = (id) =>
    checked(rules.delete(id), () =>
      script("SessionStore.lifetime", clusterSessionInfo, [hashKey(id)], [""], (reply): Action<SessionLifetime | undefined, never> => {
        const found = parseInfo(id, reply)
        if (found === undefined || pastDeadline(found)) return done(undefined)
        return done(sessionLifetime(controls, found.createdAt, expiresAtOf(found)))
      })
    )

  // One SSCAN page of the value's set, then each member's state on its own slot (at most
  // ID_CONCURRENCY at once); members that are gone or hold another value are pruned.
  const listSessionsPage: StoreActions["listSessionsPage"] = (field, value, cursor) =>
    checkedData(rules.reference(field, value), ({ value: encoded }) => {
      const operation = "SessionStore.listSessions"
      const index = referenceIndex.get(field)!
      return command(operation, "sscan", [setKey(index, encoded)], [cursor, SCAN_BATCH], (reply): Action<SessionPage, RedisError> => {
        const [next, ids] = reply as [string, Array<string>]
        if (ids.length === 0) return done({ sessions: [], cursor: next })
        const checkedIds = Effect.forEach(
          ids,
          (id) => Effect.flatMap(info(operation, id, field), (found) => checkMember(operation, id, index, encoded, found)),
          { concurrency: ID_CONCURRENCY }
        )
        return fromEffect(
          Effect.map(checkedIds, (found) => ({
            sessions: found.filter((f): f is Info => f !== undefined).map(sessionInfoOf),
            cursor: next
          }))
        )
      })
    })

  const deleteHolding: StoreActions["deleteHolding"] = (id, field, value) =>
    checked(rules.delete(id), () =>
      checkedData(rules.reference(field, value), ({ value: encoded }) =>
        stepwise(redis, () => deleteOne("SessionStore.deleteHolding", id, field, encoded))
      )
    )

  return { read, lifetime, listSessionsPage, deleteHolding, enforceCaps }
}
