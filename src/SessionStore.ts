/**
 * The `SessionStore` service: sessions as Redis hashes, plus one Redis SET per
 * referenced field value holding the ids of the sessions with that value.
 *
 * @since 4.0.0
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import type { MaxAgeInput } from "./internal/duration.js"
import { toMillis } from "./internal/duration.js"
import { makeClusterStore } from "./internal/clusterStore.js"
import { keyBase, referenceKey, resolvePrefix, revokingKey, sessionKey } from "./internal/keys.js"
import { checkLimitNames, checkMaxAgeOption, checkStoreOptionNames, referenceFieldRule } from "./internal/options.js"
import { deleteSession } from "./internal/lua/deleteSession.js"
import { freezeReference } from "./internal/lua/freezeReference.js"
import { referenceBatch } from "./internal/lua/referenceBatch.js"
import { regenerateSession } from "./internal/lua/regenerateSession.js"
import { CSRF_SECRET_FIELD, rotatedSecret } from "./Csrf.js"
import { setSession } from "./internal/lua/setSession.js"
import { touchSession } from "./internal/lua/touchSession.js"
import { unsetFields } from "./internal/lua/unsetFields.js"
import type { Limits } from "./internal/validate.js"
import {
  assignField,
  checkFieldList,
  checkFieldName,
  checkSessionId,
  DEFAULT_LIMITS,
  encodeValue,
  encodeValues,
  ID_FIELD
} from "./internal/validate.js"
import type { Cluster, Redis } from "ioredis"
import * as Step from "./internal/step.js"
import * as LuaScript from "./LuaScript.js"
import { RedisClient } from "./RedisClient.js"
import type { RedisClientService } from "./RedisClient.js"
import { InvalidSessionData, InvalidSessionId, RedisError, SessionConfigError } from "./SessionError.js"

export type { MaxAgeInput } from "./internal/duration.js"
export type { Limits } from "./internal/validate.js"

/**
 * A value a session field accepts. Stored, and read back, as a string.
 *
 * @since 4.0.0
 * @category models
 */
export type SessionValue = string | number | boolean

/**
 * A session as read from Redis: field → string. Holds `id` once the session exists.
 *
 * @since 4.0.0
 * @category models
 */
export type SessionData = Record<string, string>

/**
 * Behaviour of the store. Every option is v3-compatible.
 *
 * Options are checked when the store is built (`make`/`layer` fail, the Koa factory
 * throws, with a `SessionConfigError` naming the option): unknown names are refused
 * with a did-you-mean (`unknown option \`referenecs\`; did you mean \`references\`?`),
 * and so are values of the wrong type. An `undefined` value counts as absent.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionStoreOptions {
  /** Key prefix. Keys are `<prefix>:{<id>}` (the hash) and `<prefix>:<field>:{<value>}` (a reference set). */
  readonly prefix?: string | undefined
  /** When no `prefix` is given, the prefix becomes `koa-redis-session-sets:${namespace}`. */
  readonly namespace?: string | undefined
  /**
   * Fields to cross-reference: v3's object form `{ user_id: {} }` or `["user_id"]`.
   * Names may not contain `:`, `{` or `}`: sets are keyed `<prefix>:<field>:{<value>}`, so
   * `["a", "a:{b"]` would make `("a", "b:{c")` and `("a:{b", "c")` share a key. Nor may
   * they be `id`, empty, or hold control characters.
   */
  readonly references?: ReadonlyArray<string> | Readonly<Record<string, unknown>> | undefined
  /**
   * Session lifetime: milliseconds, an `ms`-style string (`"28 days"`, `"2h"`, `"1 month"`),
   * or a `Duration`; 1 ms to 1000 years. Default 28 days (also for `null`). `0` and `""`
   * are refused here, because v3 read them as the 28-day default (omit the option for
   * that), and so are negative numbers, `NaN` and strings that do not parse (v3 fell back
   * to 28 days). A per-call `maxAge` (`set(values, 0)`) keeps v3's meaning: falsy is the default.
   */
  readonly maxAge?: MaxAgeInput | undefined
  /** Random bytes in a new session id (base64url-encoded). 12 to 96, default 18. */
  readonly byteLength?: number | undefined
  /**
   * Input size limits. Defaults: 1000 fields per call (`maxFields`), 256-character field
   * names (`maxFieldLength`), 64 KiB values (`maxValueBytes`). Other names are refused.
   */
  readonly limits?: Partial<Limits> | undefined
}

/**
 * The errors a store operation on one session can fail with.
 *
 * @since 4.0.0
 * @category errors
 */
export type SessionStoreError = RedisError | InvalidSessionId | InvalidSessionData

/**
 * The store's operations. Writes are one Lua script each: atomic and one round
 * trip on a standalone Redis. Inputs are checked before anything is sent.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionStoreService {
  /**
   * The operations as Steps (data describing their Redis calls), which the
   * Promise facade runs without a fiber per call. The Effect methods below
   * interpret the same Steps.
   */
  readonly steps: SessionStoreSteps
  /** The Redis connection the store runs on. */
  readonly redis: RedisClientService
  /** Random bytes in a new session id. */
  readonly byteLength: number
  /** The resolved key prefix. */
  readonly prefix: string
  /** The referenced fields. */
  readonly references: ReadonlyArray<string>
  /** The default session lifetime, in milliseconds. */
  readonly maxAgeMillis: number
  /** The input size limits in force. */
  readonly limits: Limits
  /** A new crypto-random session id: `byteLength` bytes, base64url. */
  readonly createSessionId: Effect.Effect<string>
  /** The Redis key of a session's hash: `${prefix}:{${id}}` (v3.0.0's layout). */
  readonly getSessionKey: (id: string) => string
  /** The Redis key of the SET of session ids whose `field` holds `value`: `${prefix}:${field}:{${value}}` (v3.0.0's layout). */
  readonly getReferenceKey: (field: string, value: SessionValue) => string
  /**
   * The session's fields, or only `fields` (those present, plus `id`).
   * `{}` when the session does not exist.
   */
  readonly get: (id: string, fields?: ReadonlyArray<string>) => Effect.Effect<SessionData, SessionStoreError>
  /**
   * Writes `values`, creating the session when needed, and resets its lifetime
   * to `maxAge` (default: the store's). A referenced field that changes value
   * moves the id from the old value's set to the new one.
   */
  readonly set: (
    id: string,
    values: Readonly<Record<string, SessionValue>>,
    maxAge?: MaxAgeInput | null
  ) => Effect.Effect<void, SessionStoreError>
  /**
   * Like `set`, but writes only when the session exists, checked in the same
   * atomic step. Returns whether it wrote. Used to never resurrect a revoked id.
   */
  readonly setExisting: (
    id: string,
    values: Readonly<Record<string, SessionValue>>,
    maxAge?: MaxAgeInput | null
  ) => Effect.Effect<boolean, SessionStoreError>
  /**
   * Removes `fields` (and the id from their reference sets) and resets the
   * lifetime. Returns whether the session exists; without one nothing is written.
   */
  readonly unset: (id: string, fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null) => Effect.Effect<boolean, SessionStoreError>
  /** Resets the session's lifetime and extends its reference sets. Returns whether the session exists. */
  readonly touch: (id: string, maxAge?: MaxAgeInput | null) => Effect.Effect<boolean, SessionStoreError>
  /** Deletes the session and removes its id from every reference set. Returns whether it existed. */
  readonly delete: (id: string) => Effect.Effect<boolean, SessionStoreError>
  /**
   * Moves a session's data to a new id (`newId`, or a fresh one) atomically: the
   * old id stops existing and leaves every reference set. Returns the new id, or
   * `undefined` when the old session does not exist.
   *
   * Login hygiene, in the same atomic step on a single server (in the copy on a cluster):
   * - The CSRF secret (`_csrf_secret`) is rotated: when the session has one, the new id
   *   gets `options.csrfSecret` (default: a fresh one from the `csrf` package), so a
   *   token minted before the call no longer verifies. A session without a secret gets none.
   * - The new hash keeps the old one's remaining lifetime (a session that had no TTL,
   *   as v3 could leave, gets the store's `maxAge`). An explicit `maxAge` replaces it.
   */
  readonly regenerate: (
    id: string,
    newId?: string,
    maxAge?: MaxAgeInput | null,
    options?: RegenerateOptions
  ) => Effect.Effect<string | undefined, SessionStoreError>
  /**
   * Ids of the live sessions whose `field` holds `value`. Reads the set in SSCAN
   * batches and prunes ids of expired sessions (or of sessions that no longer hold the value).
   */
  readonly listByReference: (field: string, value: SessionValue) => Effect.Effect<Array<string>, RedisError | InvalidSessionData>
  /**
   * Deletes every session whose `field` holds `value` ("sign out everywhere").
   * Reads the set in SSCAN batches (bounded memory, fine for 100 000+ members) and
   * returns how many sessions it deleted.
   *
   * On a single server it cannot be escaped: its first step moves the set's members
   * aside in one atomic step, and from then on the write scripts refuse to change
   * those sessions or give them a new id (`regenerate` answers "no session",
   * `setExisting`/`touch`/`unset` write nothing, `set` fails with `InvalidSessionId`).
   * So when it returns, no session that held the value when it started is alive, nor
   * any id one moved to meanwhile. A fresh login (a session that had not held the
   * value) is not affected. On a Redis Cluster that guarantee is not given yet: a
   * session that moves to a new id while the scan runs can survive.
   */
  readonly deleteByReference: (field: string, value: SessionValue) => Effect.Effect<number, RedisError | InvalidSessionData>
}

/**
 * Options of `regenerate`.
 *
 * @since 4.0.0
 * @category models
 */
export interface RegenerateOptions {
  /** The CSRF secret the new id gets when the session has one (default: a fresh one, `csrf`'s default length). */
  readonly csrfSecret?: string | undefined
}

/**
 * The store operations as {@link Step.Step}s: same inputs, results and errors as
 * the Effect methods of {@link SessionStoreService}, plus `RedisError` from the runner.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionStoreSteps {
  readonly get: (id: string, fields?: ReadonlyArray<string> | null) => Step.Step<SessionData, InvalidSessionId | InvalidSessionData>
  readonly set: (id: string, values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null) => Step.Step<void, SessionStoreError>
  readonly setExisting: (
    id: string,
    values: Readonly<Record<string, SessionValue>>,
    maxAge?: MaxAgeInput | null
  ) => Step.Step<boolean, SessionStoreError>
  readonly unset: (id: string, fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null) => Step.Step<boolean, SessionStoreError>
  readonly touch: (id: string, maxAge?: MaxAgeInput | null) => Step.Step<boolean, SessionStoreError>
  readonly delete: (id: string) => Step.Step<boolean, SessionStoreError>
  readonly regenerate: (
    id: string,
    newId?: string,
    maxAge?: MaxAgeInput | null,
    options?: RegenerateOptions
  ) => Step.Step<string | undefined, SessionStoreError>
  readonly listByReference: (field: string, value: SessionValue) => Step.Step<Array<string>, RedisError | InvalidSessionData>
  readonly deleteByReference: (field: string, value: SessionValue) => Step.Step<number, RedisError | InvalidSessionData>
}

/** Ids per SSCAN page in `listByReference` / `deleteByReference`. */
const SCAN_BATCH = 500
const DEFAULT_MAX_AGE = 28 * 24 * 60 * 60 * 1000

interface ResolvedOptions {
  readonly prefix: string
  readonly references: ReadonlyArray<string>
  readonly maxAgeMillis: number
  readonly byteLength: number
  readonly limits: Limits
}

const configError = (option: string, reason: string) => new SessionConfigError({ option, reason })

/**
 * Validates options into their resolved form. Pure: the factory calls it synchronously.
 * Refuses unknown names (with a did-you-mean), referenced field names that would share
 * a key, and a `maxAge` option that is not a positive duration (0 and `""` included).
 */
export const resolveOptions = (options: SessionStoreOptions = {}): ResolvedOptions | SessionConfigError => {
  if (typeof options !== "object" || options === null || Array.isArray(options)) return configError("options", "must be an object")
  return checkStoreOptionNames(options) ?? resolveOptionValues(options)
}

/**
 * {@link resolveOptions} without the check of option names, for the Koa factory: it
 * checks the names against its own list (the store's and its own) before it calls this.
 */
export const resolveOptionValues = (options: SessionStoreOptions): ResolvedOptions | SessionConfigError => {
  if (options.prefix !== undefined && typeof options.prefix !== "string") return configError("prefix", "must be a string")
  if (options.namespace !== undefined && typeof options.namespace !== "string") return configError("namespace", "must be a string")
  if (options.limits !== undefined) {
    if (typeof options.limits !== "object" || options.limits === null || Array.isArray(options.limits)) {
      return configError("limits", "must be an object such as { maxFields: 1000 }")
    }
    const unknown = checkLimitNames(options.limits)
    if (unknown !== undefined) return unknown
  }
  const limits: Limits = { ...DEFAULT_LIMITS, ...withoutUndefined(options.limits ?? {}) }
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) return configError(`limits.${name}`, "must be a positive integer")
  }

  let references: Array<string> = []
  if (Array.isArray(options.references)) references = [...(options.references as ReadonlyArray<string>)]
  else if (options.references !== undefined && options.references !== null) {
    if (typeof options.references !== "object") return configError("references", "must be an array of field names or an object")
    references = Object.keys(options.references)
  }
  for (const field of references) {
    const bad = checkFieldName(field, limits)
    if (bad !== undefined) return configError("references", bad.reason)
    if (field === ID_FIELD) return configError("references", "the id field cannot be referenced")
    const reserved = referenceFieldRule(field)
    if (reserved !== undefined) return configError("references", reserved)
  }

  // Unlike a per-call maxAge, where v3's "falsy means the default" still holds.
  const maxAge = checkMaxAgeOption(options.maxAge)
  if (maxAge instanceof SessionConfigError) return maxAge
  const maxAgeMillis = maxAge ?? DEFAULT_MAX_AGE

  const byteLength = options.byteLength ?? 18
  if (!Number.isInteger(byteLength) || byteLength < 12 || byteLength > 96) {
    return configError("byteLength", "must be an integer from 12 to 96 (ids are 16 to 128 characters)")
  }
  return { prefix: resolvePrefix(options), references: Array.from(new Set(references)), maxAgeMillis, byteLength, limits }
}

// `{ maxFields: undefined }` means the default, as an absent key does.
const withoutUndefined = <A extends object>(record: A): Partial<A> =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Partial<A>

/** The TTL a call's `maxAge` stands for: the default when absent (v3: any falsy value), else a positive duration. */
export const ttlOf = (maxAge: MaxAgeInput | null | undefined, defaultMillis: number): number | InvalidSessionData => {
  if (maxAge === undefined || maxAge === null || maxAge === 0 || maxAge === "") return defaultMillis
  return toMillis(maxAge) ?? new InvalidSessionData({ reason: "maxAge must be a positive duration", field: "maxAge" })
}

/**
 * Builds the store over the `RedisClient` in context.
 *
 * @since 4.0.0
 * @category constructors
 */
export const make = (options: SessionStoreOptions = {}): Effect.Effect<SessionStoreService, SessionConfigError, RedisClient> =>
  Effect.flatMap(RedisClient, (redis) => {
    const resolved = resolveOptions(options)
    return resolved instanceof SessionConfigError ? Effect.fail(resolved) : Effect.succeed(makeWith(redis, resolved))
  })

/**
 * Builds the store synchronously over a `RedisClient` service value; throws
 * `SessionConfigError` for invalid options. For the Promise facade, which must
 * offer `store.getSessionKey` before anything async has run.
 *
 * @since 4.0.0
 * @category constructors
 */
export const unsafeMake = (redis: RedisClientService, options: SessionStoreOptions = {}): SessionStoreService => {
  const resolved = resolveOptions(options)
  if (resolved instanceof SessionConfigError) throw resolved
  return makeWith(redis, resolved)
}

/** Builds the store from options already resolved (the Koa factory resolves them before it connects). */
export const makeWith = (redis: RedisClientService, options: ResolvedOptions): SessionStoreService => {
  const { prefix, references, maxAgeMillis, byteLength, limits } = options
  const base = keyBase(prefix)
  const isReference = new Set(references)

  const ttlFor = (maxAge: MaxAgeInput | null | undefined) => ttlOf(maxAge, maxAgeMillis)

  const checkReference = (field: string, value: SessionValue): string | InvalidSessionData => {
    if (!isReference.has(field)) return new InvalidSessionData({ reason: "not a configured reference field", field })
    return encodeValue(field, value, limits)
  }

  const script = (lua: LuaScript.LuaScript, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>) => (client: Redis | Cluster) =>
    LuaScript.evaluate(client, lua, keys, args)

  // The inputs of set/setExisting, checked before anything is sent.
  const checkWrite = (id: string, values: unknown, maxAge: MaxAgeInput | null | undefined): CheckedWrite | SessionStoreError => {
    const badId = checkSessionId(id)
    if (badId !== undefined) return badId
    const pairs = encodeValues(values, limits)
    if (!Array.isArray(pairs)) return pairs
    const ttl = ttlFor(maxAge)
    return typeof ttl === "number" ? { pairs, ttl } : ttl
  }

  const write = (
    operation: string,
    id: string,
    values: unknown,
    maxAge: MaxAgeInput | null | undefined,
    onlyExisting: boolean
  ): Step.Step<boolean, SessionStoreError> => {
    const checked = checkWrite(id, values, maxAge)
    if (!("pairs" in checked)) return Step.failed(checked)
    const args = [id, checked.ttl, onlyExisting ? "1" : "0", references.length, ...references, ...checked.pairs]
    return Step.call(operation, script(setSession, [sessionKey(prefix, id), base], args), (reply) => {
      if (reply !== REVOKED) return Step.done(reply === 1)
      // setExisting: as good as gone. set: the caller asked for this id's data to exist.
      return onlyExisting ? Step.done(false) : Step.failed(new InvalidSessionId({ reason: "the session is being revoked" }))
    })
  }

  // SSCAN page by page of `setKey`; each page is checked (and pruned, or deleted) by one script.
  const scanReference = <A>(
    operation: string,
    field: string,
    encoded: string,
    setKey: string,
    mode: "list" | "delete",
    initial: A,
    fold: (acc: A, reply: unknown) => A
  ): Step.Step<A, never> => {
    const page = (cursor: string, acc: A): Step.Step<A, never> =>
      Step.call(
        operation,
        (client) => client.sscan(setKey, cursor, "COUNT", SCAN_BATCH),
        ([next, ids]: [string, Array<string>]) => {
          const processed: Step.Step<A, never> =
            ids.length === 0
              ? Step.done(acc)
              : Step.request(
                  operation,
                  script(referenceBatch, [setKey, base], [field, encoded, mode, references.length, ...references, ...ids]),
                  (reply) => fold(acc, reply)
                )
          return next === "0" ? processed : Step.flatMap(processed, (folded) => page(next, folded))
        },
        // `timeout` bounds each page (its SSCAN and its script), not the whole scan.
        true
      )
    return page("0", initial)
  }

  const steps: SessionStoreSteps = {
    get: (id, fields) => {
      const badId = checkSessionId(id)
      if (badId !== undefined) return Step.failed(badId)
      const key = sessionKey(prefix, id)
      if (fields === undefined || fields === null) {
        return Step.request("SessionStore.get", (client) => client.hgetall(key), identity)
      }
      const list = checkFieldList(fields, limits, { allowId: true })
      if (!Array.isArray(list)) return Step.failed(list)
      if (!list.includes(ID_FIELD)) list.push(ID_FIELD)
      return Step.request(
        "SessionStore.get",
        (client) => client.hmget(key, ...list),
        (values) => {
          const session: SessionData = {}
          // No `id` means no session: answer {} as HGETALL does.
          if (values[list.indexOf(ID_FIELD)] == null) return session
          for (let i = 0; i < list.length; i++) {
            const value = values[i]
            if (value != null) assignField(session, list[i]!, value)
          }
          return session
        }
      )
    },

    set: (id, values, maxAge) => Step.map(write("SessionStore.set", id, values, maxAge, false), () => undefined),

    setExisting: (id, values, maxAge) => write("SessionStore.setExisting", id, values, maxAge, true),

    unset: (id, fields, maxAge) => {
      const badId = checkSessionId(id)
      if (badId !== undefined) return Step.failed(badId)
      const list = checkFieldList(fields, limits, { allowId: false })
      if (!Array.isArray(list)) return Step.failed(list)
      const ttl = ttlFor(maxAge)
      if (typeof ttl !== "number") return Step.failed(ttl)
      const args = [id, ttl, references.length, ...references, ...list]
      return Step.request("SessionStore.unset", script(unsetFields, [sessionKey(prefix, id), base], args), isOne)
    },

    touch: (id, maxAge) => {
      const badId = checkSessionId(id)
      if (badId !== undefined) return Step.failed(badId)
      const ttl = ttlFor(maxAge)
      if (typeof ttl !== "number") return Step.failed(ttl)
      const args = [id, ttl, references.length, ...references]
      return Step.request("SessionStore.touch", script(touchSession, [sessionKey(prefix, id), base], args), isOne)
    },

    delete: (id) => {
      const badId = checkSessionId(id)
      if (badId !== undefined) return Step.failed(badId)
      const args = [id, references.length, ...references]
      return Step.request("SessionStore.delete", script(deleteSession, [sessionKey(prefix, id), base], args), isOne)
    },

    regenerate: (id, newId, maxAge, options) => {
      const badId = checkSessionId(id) ?? (newId === undefined ? undefined : checkSessionId(newId))
      if (badId !== undefined) return Step.failed(badId)
      const ttl = ttlFor(maxAge)
      if (typeof ttl !== "number") return Step.failed(ttl)
      const secret = rotatedSecret(options?.csrfSecret)
      if (typeof secret !== "string") return Step.failed(secret)
      const target = newId ?? randomBytes(byteLength).toString("base64url")
      if (target === id) return Step.failed(new InvalidSessionId({ reason: "the new id must differ from the old one" }))
      // No maxAge (v3: any falsy one): the new hash keeps the old one's remaining lifetime.
      const keep = maxAge === undefined || maxAge === null || maxAge === 0 || maxAge === "" ? "1" : "0"
      const keys = [sessionKey(prefix, id), sessionKey(prefix, target), base]
      const args = [id, target, ttl, keep, CSRF_SECRET_FIELD, secret, references.length, ...references]
      return Step.call("SessionStore.regenerate", script(regenerateSession, keys, args), (reply) => {
        if (reply === 1) return Step.done<string | undefined>(target)
        if (reply === 0) return Step.done(undefined)
        return Step.failed(new InvalidSessionId({ reason: "the new id is already in use" }))
      })
    },

    listByReference: (field, value) => {
      const encoded = checkReference(field, value)
      if (typeof encoded !== "string") return Step.failed(encoded)
      const setKey = referenceKey(prefix, field, encoded)
      return Step.map(
        scanReference("SessionStore.listByReference", field, encoded, setKey, "list", new Set<string>(), (seen, reply) => {
          for (const id of reply as Array<string>) seen.add(id)
          return seen
        }),
        (ids) => Array.from(ids)
      )
    },

    // The members move to the revoking set in one step, where no write can change them
    // (or give them a new id) any more; scanning it then sees every one of them.
    deleteByReference: (field, value) => {
      const encoded = checkReference(field, value)
      if (typeof encoded !== "string") return Step.failed(encoded)
      const operation = "SessionStore.deleteByReference"
      const revoking = revokingKey(prefix, field, encoded)
      return Step.flatMap(
        Step.request(operation, script(freezeReference, [referenceKey(prefix, field, encoded), revoking], []), identity),
        () => scanReference(operation, field, encoded, revoking, "delete", 0, (count, reply) => count + (reply as number))
      )
    }
  }

  const service: SessionStoreService = {
    redis,
    byteLength,
    prefix,
    references,
    maxAgeMillis,
    limits,
    steps,
    createSessionId: Effect.sync(() => randomBytes(byteLength).toString("base64url")),
    getSessionKey: (id) => sessionKey(prefix, id),
    getReferenceKey: (field, value) => referenceKey(prefix, field, String(value)),
    get: (id, fields) => Step.suspend(redis, () => steps.get(id, fields)),
    set: (id, values, maxAge) => Step.suspend(redis, () => steps.set(id, values, maxAge)),
    setExisting: (id, values, maxAge) => Step.suspend(redis, () => steps.setExisting(id, values, maxAge)),
    unset: (id, fields, maxAge) => Step.suspend(redis, () => steps.unset(id, fields, maxAge)),
    touch: (id, maxAge) => Step.suspend(redis, () => steps.touch(id, maxAge)),
    delete: (id) => Step.suspend(redis, () => steps.delete(id)),
    regenerate: (id, newId, maxAge, options) => Step.suspend(redis, () => steps.regenerate(id, newId, maxAge, options)),
    listByReference: (field, value) => Step.suspend(redis, () => steps.listByReference(field, value)),
    deleteByReference: (field, value) => Step.suspend(redis, () => steps.deleteByReference(field, value))
  }
  if (!redis.isCluster) return service

  // On a cluster a session's hash and its reference sets are in different slots: the
  // operations touching both run as a protocol of single-slot steps (README, "Redis Cluster").
  const cluster = makeClusterStore(service, { ttlFor, checkReference, checkWrite })
  return {
    ...cluster,
    steps: {
      get: steps.get,
      set: (id, values, maxAge) => Step.fromEffect("SessionStore.set", cluster.set(id, values, maxAge)),
      setExisting: (id, values, maxAge) => Step.fromEffect("SessionStore.setExisting", cluster.setExisting(id, values, maxAge)),
      unset: (id, fields, maxAge) => Step.fromEffect("SessionStore.unset", cluster.unset(id, fields, maxAge)),
      touch: (id, maxAge) => Step.fromEffect("SessionStore.touch", cluster.touch(id, maxAge)),
      delete: (id) => Step.fromEffect("SessionStore.delete", cluster.delete(id)),
      regenerate: (id, newId, maxAge, options) => Step.fromEffect("SessionStore.regenerate", cluster.regenerate(id, newId, maxAge, options)),
      listByReference: (field, value) => Step.fromEffect("SessionStore.listByReference", cluster.listByReference(field, value)),
      deleteByReference: (field, value) => Step.fromEffect("SessionStore.deleteByReference", cluster.deleteByReference(field, value))
    }
  }
}

/** Inputs of a write that passed every rule: the flat field/value list and the TTL in ms. */
export interface CheckedWrite {
  readonly pairs: Array<string>
  readonly ttl: number
}

const isOne = (reply: unknown): boolean => reply === 1
/** What the write scripts answer for a session whose revoke has started. */
const REVOKED = -1
const identity = <A>(a: A): A => a

/**
 * The session store, over the `RedisClient` in context.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { RedisClient, SessionStore } from "koa-redis-session-sets"
 *
 * // A backend job: sign user 42 out everywhere.
 * const revoke = Effect.gen(function* () {
 *   const store = yield* SessionStore
 *   return yield* store.deleteByReference("user_id", 42)
 * })
 *
 * const StoreLive = SessionStore.layer({ references: ["user_id"] }).pipe(
 *   Layer.provide(RedisClient.layer("redis://127.0.0.1:6379"))
 * )
 * Effect.runPromise(revoke.pipe(Effect.provide(StoreLive)))
 * ```
 *
 * @since 4.0.0
 * @category tags
 */
export class SessionStore extends Context.Tag("koa-redis-session-sets/SessionStore")<SessionStore, SessionStoreService>() {
  /** Builds the store over the `RedisClient` in context. */
  static readonly make = make
  /** A layer of the store; needs a `RedisClient` layer. */
  static readonly layer = (options: SessionStoreOptions = {}): Layer.Layer<SessionStore, SessionConfigError, RedisClient> =>
    Layer.effect(SessionStore, make(options))
}
