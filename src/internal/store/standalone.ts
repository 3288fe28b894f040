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
import type { GetPlan, StoreRules, WritePlan } from "./plan.js"
import { SCAN_BATCH, sessionFromFields } from "./plan.js"
import { toEffect } from "./run.js"
import type { Regenerated, StoreActions } from "./service.js"
import type { SessionData, SessionStoreError } from "./types.js"

/** What the write scripts answer for a session whose revoke has started. */
const REVOKED = -1
const isOne = (reply: unknown): Action<boolean, never> => done(reply === 1)

/** `get` as one command (HGETALL, or HMGET of the fields and `id`); the cluster store sends the same. */
export const getCommand = (prefix: string, plan: GetPlan): Action<SessionData, never> => {
  const key = sessionKey(prefix, plan.id)
  const fields = plan.fields
  if (fields === undefined) return command("SessionStore.get", "hgetall", [key], [], done as (reply: unknown) => Action<SessionData, never>)
  return command("SessionStore.get", "hmget", [key], fields, (values) => done(sessionFromFields(fields, values as Array<string | null>)))
}

export const makeStandaloneActions = (rules: StoreRules, redis: RedisClientService): StoreActions => {
  const { prefix, references } = rules
  const base = keyBase(prefix)
  const nrefs = references.length

  const write = (operation: string, plan: WritePlan, onlyExisting: boolean): Action<boolean, SessionStoreError> =>
    script(
      operation,
      setSession,
      [sessionKey(prefix, plan.id), base],
      [plan.id, plan.ttl, onlyExisting ? "1" : "0", nrefs, ...references, ...plan.pairs],
      (reply) => {
        if (reply !== REVOKED) return done(reply === 1)
        // setExisting: as good as gone. set: the caller asked for this id's data to exist.
        return onlyExisting ? done(false) : failed(new InvalidSessionId({ reason: "the session is being revoked" }))
      }
    )

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
            const args = [field, value, mode, nrefs, ...references, ...ids]
            return script(operation, referenceBatch, [setKey, base], args, (checked) => done([next, fold(acc, checked)] as const))
          })
        ),
        ([next, folded]) => (next === "0" ? Effect.succeed(folded) : page(next, folded))
      )
    return page("0", initial)
  }

  return {
    get: (id, fields) => checked(rules.get(id, fields), (plan) => getCommand(prefix, plan)),

    set: (id, values, maxAge) =>
      checked(rules.write(id, values, maxAge), (plan) => andThen(write("SessionStore.set", plan, false), () => done(undefined))),

    setExisting: (id, values, maxAge) => checked(rules.write(id, values, maxAge), (plan) => write("SessionStore.setExisting", plan, true)),

    unset: (id, fields, maxAge) =>
      checked(rules.unset(id, fields, maxAge), (plan) =>
        script(
          "SessionStore.unset",
          unsetFields,
          [sessionKey(prefix, id), base],
          [id, plan.ttl, nrefs, ...references, ...plan.fields],
          isOne
        )
      ),

    touch: (id, maxAge) =>
      checked(rules.touch(id, maxAge), (plan) =>
        script("SessionStore.touch", touchSession, [sessionKey(prefix, id), base], [id, plan.ttl, nrefs, ...references], isOne)
      ),

    delete: (id) =>
      checked(rules.delete(id), () =>
        script("SessionStore.delete", deleteSession, [sessionKey(prefix, id), base], [id, nrefs, ...references], isOne)
      ),

    regenerate: (id, newId, maxAge, options) =>
      checked(rules.regenerate(id, newId, maxAge, options), (plan) => {
        const keys = [sessionKey(prefix, id), sessionKey(prefix, plan.target), base]
        const args = [id, plan.target, plan.ttl, plan.keepLifetime ? "1" : "0", plan.secretField, plan.secret, nrefs, ...references]
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

    listByReference: (field, value) =>
      checkedData(rules.reference(field, value), (plan) => {
        const setKey = referenceKey(prefix, field, plan.value)
        const listing = scan("SessionStore.listByReference", field, plan.value, setKey, "list", new Set<string>(), (seen, reply) => {
          for (const id of reply as Array<string>) seen.add(id)
          return seen
        })
        return fromEffect(Effect.map(listing, (ids) => Array.from(ids)))
      }),

    // The members move to the revoking set in one step, where no write can change them
    // (or give them a new id) any more; scanning it then sees every one of them.
    deleteByReference: (field, value) =>
      checkedData(rules.reference(field, value), (plan) => {
        const operation = "SessionStore.deleteByReference"
        const revoking = revokingKey(prefix, field, plan.value)
        const freeze = script(operation, freezeReference, [referenceKey(prefix, field, plan.value), revoking], [], done)
        return fromEffect(
          Effect.zipRight(
            toEffect(redis, freeze),
            scan(operation, field, plan.value, revoking, "delete", 0, (count, reply) => count + (reply as number))
          )
        )
      })
  }
}
