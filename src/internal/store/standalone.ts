// The store on one Redis server: every operation is one command (a script for each
// write, so it is atomic), except the reference scans, which page through a set.
import { Effect } from "effect"
import type { RedisClientService } from "../../RedisClient.js"
import { InvalidSessionId } from "../../SessionError.js"
import type { RedisError } from "../../SessionError.js"
import { keyBase, referenceKey, revokingKey, sessionKey } from "../keys.js"
import type { Action } from "./action.js"
import { andThen, checked, checkedData, command, done, failed, fromEffect, script } from "./action.js"
import { deleteSession } from "./lua/deleteSession.js"
import { freezeReference } from "./lua/freezeReference.js"
import { referenceBatch } from "./lua/referenceBatch.js"
import { regenerateSession } from "./lua/regenerateSession.js"
import { setSession } from "./lua/setSession.js"
import { touchSession } from "./lua/touchSession.js"
import { unsetFields } from "./lua/unsetFields.js"
import { renewSession, sessionLifetime as lifetimeScript } from "./lua/readSession.js"
import type { GetPlan, StoreRules, WritePlan } from "./plan.js"
import { SCAN_BATCH, sessionFromFields } from "./plan.js"
import { announceEvictions, clientPairs, LAST_SEEN_FIELD, readUpdateDue, sessionInfo, sessionLifetime, storedTime } from "./controls.js"
import { toEffect } from "./run.js"
import type { ReadResult, Regenerated, SessionPage, StoreActions } from "./service.js"
import type { SessionData, SessionEviction, SessionStoreError } from "./types.js"

/** What the write scripts answer for a session whose revoke has started. */
const REVOKED = -1
const isOne = (reply: unknown): Action<boolean, never> => done(reply === 1)

/**
 * `get` as one command (HGETALL, or HMGET of the fields and `id`); the cluster store sends
 * the same. With an absolute lifetime, `rules.alive` hides a session past its deadline.
 */
export function getCommand(prefix: string, plan: GetPlan, rules?: StoreRules): Action<SessionData, never>
/** With `withLastSeen`: also the last-seen time it read (before `rules.alive` dropped it). */
export function getCommand(prefix: string, plan: GetPlan, rules: StoreRules, withLastSeen: true): Action<ReadOfSession, never>
export function getCommand(prefix: string, plan: GetPlan, rules?: StoreRules, withLastSeen?: true): Action<unknown, never> {
  const key = sessionKey(prefix, plan.id)
  const fields = plan.fields
  const checks = rules !== undefined && (rules.controls.absoluteMaxAgeMillis !== undefined || plan.drop.length > 0)
  // The hot path (no controls): the reply is the answer.
  const answer: (session: SessionData) => Action<unknown, never> =
    !checks && !withLastSeen
      ? done
      : (session) => {
          const lastSeenAt = withLastSeen ? storedTime(session[LAST_SEEN_FIELD]) : undefined
          const alive = checks ? rules.alive(plan, session, Date.now()) : session
          return done(withLastSeen ? { session: alive, lastSeenAt } : alive)
        }
  if (fields === undefined) return command("SessionStore.get", "hgetall", [key], [], (reply) => answer(reply as SessionData))
  return command("SessionStore.get", "hmget", [key], fields, (values) => answer(sessionFromFields(fields, values as Array<string | null>)))
}

/** A read's session, and the last-seen time it held. */
interface ReadOfSession {
  readonly session: SessionData
  readonly lastSeenAt: number | undefined
}

/** The evictions a write script reported: (field, value, count) triples from `from`. */
const evictionsIn = (reply: ReadonlyArray<unknown>, from: number): Array<SessionEviction> => {
  const evictions: Array<SessionEviction> = []
  for (let i = from; i + 2 < reply.length; i += 3) {
    evictions.push({ field: String(reply[i]), value: String(reply[i + 1]), evicted: Number(reply[i + 2]) })
  }
  return evictions
}

export const makeStandaloneActions = (rules: StoreRules, redis: RedisClientService): StoreActions => {
  const { prefix, references, controls } = rules
  const base = keyBase(prefix)
  const nrefs = references.length
  const on = controls.on ? "1" : "0"
  const absolute = controls.absoluteMaxAgeMillis ?? -1

  // setSession's arguments: the id and lifetime, then what is the same for every write (built once), then the pairs.
  const writeSettings = [on, absolute, nrefs, ...references, ...controls.maxSessions]
  const writeArgs = (plan: WritePlan, onlyExisting: boolean): Array<string | number> => {
    const args: Array<string | number> = [plan.id, plan.ttl, onlyExisting ? "1" : "0", ...writeSettings]
    for (const item of plan.pairs) args.push(item)
    return args
  }

  const write = (operation: string, plan: WritePlan, onlyExisting: boolean): Action<boolean, SessionStoreError> =>
    script(operation, setSession, [sessionKey(prefix, plan.id), base], writeArgs(plan, onlyExisting), (reply) => {
      // An array only when a cap evicted sessions: [1, field, value, count, …].
      const status = Array.isArray(reply) ? reply[0] : reply
      if (Array.isArray(reply)) announceEvictions(rules.onEvict, evictionsIn(reply, 1))
      if (status !== REVOKED) return done(status === 1)
      // setExisting: as good as gone. set: the caller asked for this id's data to exist.
      return onlyExisting ? done(false) : failed(new InvalidSessionId({ reason: "the session is being revoked" }))
    })

  // The renew script's arguments after the id, the same for every read: built once.
  const renewSettings = [controls.rolling ? "1" : "0", controls.rollingIntervalMillis, rules.maxAgeMillis, absolute, nrefs, ...references]
  // SSCAN page by page of `setKey`; each page is checked (and pruned, or deleted) by one
  // script. `timeout` bounds each page (its SSCAN and its script), not the whole scan.
  const scan = <A>(
    operation: string,
    field: string,
    value: string,
    setKey: string,
    mode: "list" | "delete",
    initial: A,
    fold: (acc: A, reply: unknown) => A
  ): Effect.Effect<A, RedisError> => {
    const page = (cursor: string, acc: A): Effect.Effect<A, RedisError> =>
      Effect.flatMap(
        toEffect(
          redis,
          command(operation, "sscan", [setKey], [cursor, SCAN_BATCH], (reply) => {
            const [next, ids] = reply as [string, Array<string>]
            if (ids.length === 0) return done([next, acc] as const)
            const args = [field, value, mode, absolute, nrefs, ...references, ...ids]
            return script(operation, referenceBatch, [setKey, base], args, (checked) => done([next, fold(acc, checked)] as const))
          })
        ),
        ([next, folded]) => (next === "0" ? Effect.succeed(folded) : page(next, folded))
      )
    return page("0", initial)
  }

  return {
    get: (id, fields) => checked(rules.get(id, fields), (plan) => getCommand(prefix, plan, rules)),

    // A plain read (what get sends); only when it finds the read-side update due (by the
    // last-seen time it read), one more command, which checks again atomically.
    read: (id, fields, client) =>
      checked(rules.get(id, fields), (plan) =>
        andThen(getCommand(prefix, plan, rules, true), ({ session, lastSeenAt }): Action<ReadResult, SessionStoreError> => {
          if (!controls.observesReads || session["id"] === undefined || !readUpdateDue(controls, lastSeenAt, Date.now())) {
            return done({ session, renewedTtl: undefined })
          }
          const args: Array<string | number> = [id, ...renewSettings]
          for (const item of clientPairs(controls, client)) args.push(item)
          return script("SessionStore.read", renewSession, [sessionKey(prefix, id), base], args, (reply) => {
            const renewed = Number(reply)
            if (renewed < 0) return done({ session: {}, renewedTtl: undefined })
            return done({ session, renewedTtl: renewed > 0 ? renewed : undefined })
          })
        })
      ),

    set: (id, values, maxAge, client) =>
      checked(rules.write(id, values, maxAge, client), (plan) => andThen(write("SessionStore.set", plan, false), () => done(undefined))),

    setExisting: (id, values, maxAge, client) =>
      checked(rules.write(id, values, maxAge, client), (plan) => write("SessionStore.setExisting", plan, true)),

    unset: (id, fields, maxAge) =>
      checked(rules.unset(id, fields, maxAge), (plan) =>
        script(
          "SessionStore.unset",
          unsetFields,
          [sessionKey(prefix, id), base],
          [id, plan.ttl, on, absolute, nrefs, ...references, ...plan.fields],
          isOne
        )
      ),

    touch: (id, maxAge) =>
      checked(rules.touch(id, maxAge), (plan) =>
        script(
          "SessionStore.touch",
          touchSession,
          [sessionKey(prefix, id), base],
          [id, plan.ttl, on, absolute, nrefs, ...references],
          isOne
        )
      ),

    delete: (id) =>
      checked(rules.delete(id), () =>
        script("SessionStore.delete", deleteSession, [sessionKey(prefix, id), base], [id, "", "", nrefs, ...references], isOne)
      ),

    deleteHolding: (id, field, value) =>
      checked(rules.delete(id), () =>
        checkedData(rules.reference(field, value), (plan) =>
          script(
            "SessionStore.deleteHolding",
            deleteSession,
            [sessionKey(prefix, id), base],
            [id, plan.field, plan.value, nrefs, ...references],
            isOne
          )
        )
      ),

    regenerate: (id, newId, maxAge, options) =>
      checked(rules.regenerate(id, newId, maxAge, options), (plan) => {
        const keys = [sessionKey(prefix, id), sessionKey(prefix, plan.target), base]
        const args = [
          id,
          plan.target,
          plan.ttl,
          plan.keepLifetime ? "1" : "0",
          plan.secretField,
          plan.secret,
          on,
          absolute,
          nrefs,
          ...references
        ]
        return script(
          "SessionStore.regenerate",
          regenerateSession,
          keys,
          args,
          (reply): Action<Regenerated | undefined, SessionStoreError> => {
            const ttl = Number(reply)
            if (ttl > 0) return done({ id: plan.target, ttl })
            if (ttl === 0) return done(undefined)
            return failed(new InvalidSessionId({ reason: "the new id is already in use" }))
          }
        )
      }),

    lifetime: (id) =>
      checked(rules.delete(id), () =>
        script("SessionStore.lifetime", lifetimeScript, [sessionKey(prefix, id)], [absolute], (reply) => {
          const [created, at] = reply as [string | number, number | undefined]
          if (created === -2) return done(undefined)
          return done(sessionLifetime(controls, String(created), at !== undefined && at >= 0 ? at : undefined))
        })
      ),

    listByReference: (field, value) =>
      checkedData(rules.reference(field, value), (plan) => {
        const setKey = referenceKey(prefix, field, plan.value)
        const listing = scan("SessionStore.listByReference", field, plan.value, setKey, "list", new Set<string>(), (seen, reply) => {
          for (const id of reply as Array<string>) seen.add(id)
          return seen
        })
        return fromEffect(Effect.map(listing, (ids) => Array.from(ids)))
      }),

    // One SSCAN page, then one script that reads (and prunes) the page's members.
    listSessionsPage: (field, value, cursor) =>
      checkedData(rules.reference(field, value), (plan) => {
        const operation = "SessionStore.listSessions"
        const setKey = referenceKey(prefix, field, plan.value)
        return command(operation, "sscan", [setKey], [cursor, SCAN_BATCH], (reply): Action<SessionPage, RedisError> => {
          const [next, ids] = reply as [string, Array<string>]
          if (ids.length === 0) return done({ sessions: [], cursor: next })
          const args = [field, plan.value, "info", absolute, nrefs, ...references, ...ids]
          return script(operation, referenceBatch, [setKey, base], args, (infos) => {
            const [now, ...rows] = infos as Array<string | number>
            const sessions = []
            for (let i = 0; i + 5 < rows.length; i += 6) {
              const ttl = Number(rows[i + 3])
              const stored = {
                createdAt: String(rows[i + 1]),
                lastSeenAt: String(rows[i + 2]),
                userAgent: String(rows[i + 4]),
                ip: String(rows[i + 5])
              }
              sessions.push(sessionInfo(controls, String(rows[i]), stored, ttl >= 0 ? Number(now) + ttl : undefined))
            }
            return done({ sessions, cursor: next })
          })
        })
      }),

    // The members move to the revoking set in one step, where no write can change them
    // (or give them a new id) any more; scanning it then sees every one of them.
    deleteByReference: (field, value, except) =>
      checkedData(rules.reference(field, value), (plan) => {
        const operation = "SessionStore.deleteByReference"
        const revoking = revokingKey(prefix, field, plan.value)
        const freeze = script(operation, freezeReference, [referenceKey(prefix, field, plan.value), revoking], [except ?? ""], done)
        return fromEffect(
          Effect.zipRight(
            toEffect(redis, freeze),
            scan(operation, field, plan.value, revoking, "delete", 0, (count, reply) => count + (reply as number))
          )
        )
      })
  }
}
