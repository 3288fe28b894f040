// The store's operations on a Redis Cluster, as protocols of single-slot steps
// (protocol.ts), each step one command or several sent at once. `get` is one command,
// as on a single server.
import { Effect } from "effect"
import type { RedisClientService } from "../../../RedisClient.js"
import { InvalidSessionId } from "../../../SessionError.js"
import type { RedisError } from "../../../SessionError.js"
import { leftKey, tombstoneKey } from "../../keys.js"
import { ID_FIELD } from "../../validate.js"
import type { Action } from "../action.js"
import { andThen, both, checked, checkedData, done, failed, fromEffect, map, script } from "../action.js"
import { clusterFreezeReference, clusterKeepRevoking } from "../lua/clusterFreezeReference.js"
import { clusterRevokeSession } from "../lua/clusterRevokeSession.js"
import { clusterRegenerateSnapshot } from "../lua/regenerateSession.js"
import type { StoreRules, WritePlan } from "../plan.js"
import { SCAN_BATCH } from "../plan.js"
import { stepwise } from "../run.js"
import type { Regenerated, StoreActions } from "../service.js"
import { getCommand } from "../standalone.js"
import type { SessionStoreError } from "../types.js"
import type { Candidates } from "./protocol.js"
import { addCandidate, asArray, asValue, ID_CONCURRENCY, makeProtocol, NO_SESSION, REVOKED } from "./protocol.js"
import { makeClusterSessions } from "./sessions.js"

/** clusterWriteSession: a regenerate's copy is past its absolute deadline. */
const DEAD_COPY = -4

export const makeClusterActions = (rules: StoreRules, redis: RedisClientService): StoreActions => {
  const { prefix, references } = rules
  const protocol = makeProtocol(rules, redis)
  const { nrefs, referenceIndex, none, missing, hashKey, setKey, revokingSetKey, grace, margin } = protocol
  const { readState, reconcile, preAdd, runWriteScript, write, deleteOne, effectOf, scan } = protocol
  const sessions = makeClusterSessions(rules, redis, protocol)

  // Then, when the session joined a capped value, the cap (sessions.ts).
  const setLike = (operation: string, plan: WritePlan, onlyExisting: boolean) =>
    stepwise(redis, () =>
      andThen(
        write(operation, plan.id, { op: "set", pairs: plan.pairs }, plan.ttl, onlyExisting),
        (reply): Action<boolean, RedisError | InvalidSessionId> =>
          reply.status === REVOKED
            ? failed(new InvalidSessionId({ reason: "the session was revoked" }))
            : map(sessions.enforceCaps(operation, plan.id, reply), () => reply.status === 1)
      )
    )

  return {
    get: (id, fields) => checked(rules.get(id, fields), (plan) => getCommand(prefix, plan, rules)),

    read: sessions.read,

    set: (id, values, maxAge, client) =>
      checked(rules.write(id, values, maxAge, client), (plan) => map(setLike("SessionStore.set", plan, false), () => undefined)),

    setExisting: (id, values, maxAge, client) =>
      checked(rules.write(id, values, maxAge, client), (plan) => setLike("SessionStore.setExisting", plan, true)),

    unset: (id, fields, maxAge) =>
      checked(rules.unset(id, fields, maxAge), (plan) =>
        stepwise(redis, () =>
          map(write("SessionStore.unset", id, { op: "unset", fields: plan.fields }, plan.ttl, true), (reply) => reply.status === 1)
        )
      ),

    touch: (id, maxAge) =>
      checked(rules.touch(id, maxAge), (plan) =>
        stepwise(redis, () => map(write("SessionStore.touch", id, { op: "touch" }, plan.ttl, true), (reply) => reply.status === 1))
      ),

    lifetime: sessions.lifetime,
    listSessionsPage: sessions.listSessionsPage,
    deleteHolding: sessions.deleteHolding,

    delete: (id) =>
      checked(rules.delete(id), () => stepwise(redis, () => deleteOne("SessionStore.delete", id, "", ""))),

    regenerate: (id, newId, maxAge, options) =>
      checked(rules.regenerate(id, newId, maxAge, options), (plan) => {
        const operation = "SessionStore.regenerate"
        // Copy: the old hash and its expiry from one atomic read.
        const copy = (reply: unknown): Action<Regenerated | undefined, SessionStoreError> => {
          const items = asArray(reply)
          const expireAt = Number(items[0])
          if (expireAt === NO_SESSION) return done(undefined)
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
          if (snapshot.has(plan.secretField)) snapshot.set(plan.secretField, plan.secret)
          snapshot.delete(ID_FIELD)
          const pairs = [...snapshot].flat()
          const after = references.map((field) => snapshot.get(field) ?? null)
          // Keeping the lifetime: sets extended by the remaining TTL (from now, so past
          // `expireAt`), and the new hash capped at `expireAt`, so every set outlives it.
          const kept = plan.keepLifetime && expireAt >= 0 && remaining > 0
          const ttl = kept ? remaining : plan.ttl
          // The new id joins its sets before its hash exists…
          const candidates: Candidates = new Map()
          const takeBack = (state = missing) => reconcile(operation, plan.target, candidates, state)
          // (refused when a revoke of a value it holds or left has frozen that set with the old
          // id in it: the session is being revoked, and gets no new id)…
          return andThen(preAdd(operation, plan.target, after, ttl, candidates, id, left), (setsCap) => {
            if (setsCap === REVOKED) return map(takeBack(), () => undefined)
            const cap = kept && (setsCap < 0 || expireAt < setsCap) ? expireAt : setsCap
            // …the new hash is written only if the id is free (and was not revoked)…
            const unchecked = none.map(() => "?")
            const create = runWriteScript(operation, plan.target, hashKey(plan.target), "create", ttl, false, cap, unchecked, pairs)
            return andThen(create, (created): Action<Regenerated | undefined, SessionStoreError> => {
              if (created.status === REVOKED) return map(takeBack(), () => undefined)
              // Past its absolute deadline: no copy, and the old session is deleted.
              if (created.status === DEAD_COPY) return map(both(operation, takeBack(), deleteOne(operation, id, "", "")), () => undefined)
              if (created.status !== 1) {
                return andThen(takeBack(created.status === -2 ? { ...created.state, values: created.old } : missing), () =>
                  failed(new InvalidSessionId({ reason: "the new id is already in use" }))
                )
              }
              // …then the old hash goes and the old id leaves its sets, while the new one's
              // are settled (and it leaves those of a dead session the copy replaced under
              // its id, past its absolute deadline): two protocols, their steps sent together.
              created.old.forEach((value, index) => addCandidate(candidates, index, value))
              return map(both(operation, deleteOne(operation, id, "", ""), takeBack(created.state)), () => ({
                id: plan.target,
                ttl: created.ttl ?? ttl
              }))
            })
          })
        }
        return stepwise(redis, () => script(operation, clusterRegenerateSnapshot, [hashKey(id), leftKey(prefix, id)], [], copy))
      }),

    // The value's set, then its revoking set: a revoke that was interrupted (or is running)
    // left the sessions it had not reached there, live and holding the value. Members of
    // the revoking set are checked but never removed (the revoke relies on them).
    listByReference: (field, value) =>
      checkedData(rules.reference(field, value), ({ value: encoded }) => {
        const index = referenceIndex.get(field)!
        return fromEffect(
          Effect.gen(function* () {
            const seen = new Set<string>()
            const operation = "SessionStore.listByReference"
            const check = (prune: boolean) => (ids: ReadonlyArray<string>, acc: Set<string>) =>
              Effect.as(
                Effect.forEach(
                  ids,
                  (id) =>
                    effectOf(
                      andThen(readState(operation, id), (state) => {
                        if (state.values[index] === encoded) {
                          acc.add(id)
                          return done(undefined)
                        }
                        return prune ? reconcile(operation, id, new Map([[index, new Set([encoded])]]), state) : done(undefined)
                      })
                    ),
                  { concurrency: ID_CONCURRENCY, discard: true }
                ),
                acc
              )
            yield* scan(operation, setKey(index, encoded), seen, check(true))
            yield* scan(operation, revokingSetKey(index, encoded), seen, check(false))
            return Array.from(seen)
          })
        )
      }),

    // 1. freeze: the value's set moves to its revoking set (value's slot), t0 = server time.
    // 2. every member of the revoking set, each on its own slot (clusterRevokeSession): deleted
    //    when it holds the value or left it since t0 - margin, tombstoned when it has no hash,
    //    else (it moved away before the revoke) taken out of the revoking set. The revoking
    //    set keeps the others while the scan runs and `grace` after it, so an in-flight
    //    regenerate of a member is refused (clusterAddReference).
    // `except`: spared by the freeze (it stays in the set, never reaches the revoking set)
    // and skipped by the scan (a concurrent revoke may have put it in the revoking set).
    deleteByReference: (field, value, except) =>
      checkedData(rules.reference(field, value), ({ value: encoded }) => {
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
              // Kept (it had moved away before the revoke): out of the revoking set, so that
              // signing in to the value again later is an ordinary write, not a revoked one's.
              if (Number(items[0]) === -1) return Effect.as(redis.use(operation, (client) => client.srem(revoking, id)), false)
              if (Number(items[0]) !== 1) return Effect.succeed(false)
              const candidates: Candidates = new Map()
              references.forEach((_, i) => addCandidate(candidates, i, asValue(items[1 + i])))
              // A write in flight may have added it to the value's new set meanwhile.
              addCandidate(candidates, index, encoded)
              return Effect.as(effectOf(reconcile(operation, id, candidates, missing)), true)
            }
          )
        // Not bounded as a whole (100 000+ members may take longer than `timeout`): each call is.
        const page = (since: number, cursor: string, count: number): Effect.Effect<number, RedisError> =>
          Effect.flatMap(keepAlive(false), () =>
            Effect.flatMap(
              redis.use(operation, (client) => client.sscan(revoking, cursor, "COUNT", SCAN_BATCH)),
              ([next, ids]) => {
                const processed = Effect.map(
                  Effect.forEach(
                    ids.filter((id) => id !== except),
                    (id) => revokeOne(id, since),
                    { concurrency: ID_CONCURRENCY }
                  ),
                  (deleted) => count + deleted.filter(Boolean).length
                )
                return next === "0" ? processed : Effect.flatMap(processed, (n) => page(since, next, n))
              }
            )
          )
        return fromEffect(
          Effect.gen(function* () {
            const t0 = Number(yield* redis.runScript(operation, clusterFreezeReference, [setKey(index, encoded), revoking], [except ?? ""]))
            const count = yield* page(t0 - margin, "0", 0)
            yield* keepAlive(true)
            return count
          })
        )
      })
  }
}
