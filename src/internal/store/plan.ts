// The store's rules, written once for every backend: options → resolved options, and
// each operation's inputs → a plan (what to do, checked) or the typed error. Pure: no
// I/O and no Effect, so a backend is a thin interpreter of these plans.
import { randomBytes } from "node:crypto"
import { CSRF_SECRET_FIELD, rotatedSecret } from "../../Csrf.js"
import { InvalidSessionData, InvalidSessionId, SessionConfigError } from "../../SessionError.js"
import type { MaxAgeInput } from "../duration.js"
import { toMillis } from "../duration.js"
import { resolvePrefix } from "../keys.js"
import { checkLimitNames, checkMaxAgeOption, checkStoreOptionNames, referenceFieldRule } from "../options.js"
import type { Limits } from "../validate.js"
import {
  assignField,
  checkFieldList,
  checkFieldName,
  checkSessionId,
  DEFAULT_LIMITS,
  encodeValue,
  encodeValues,
  ID_FIELD
} from "../validate.js"
import type { ClientInfo, Controls } from "./controls.js"
import {
  absoluteDeadline,
  clientPairs,
  CONTROL_FIELDS,
  CREATED_AT_FIELD,
  LAST_SEEN_FIELD,
  resolveControls,
  resolveMaxSessions,
  storedTime
} from "./controls.js"
import type { RegenerateOptions, SessionData, SessionEviction, SessionStoreOptions, SessionValue } from "./types.js"

/** Ids per SSCAN page in `listByReference` / `deleteByReference`. */
export const SCAN_BATCH = 500
const NOTHING: ReadonlyArray<string> = []
const DEFAULT_MAX_AGE = 28 * 24 * 60 * 60 * 1000

/** Store options after every rule passed. */
export interface ResolvedOptions {
  readonly prefix: string
  readonly references: ReadonlyArray<string>
  readonly maxAgeMillis: number
  readonly byteLength: number
  readonly limits: Limits
  /** The account controls (lifetimes, caps, tracking); all off by default. */
  readonly controls: Controls
  readonly onEvict: ((eviction: SessionEviction) => void) | undefined
}

const configError = (option: string, reason: string) => new SessionConfigError({ option, reason })

/**
 * Validates options into their resolved form. Refuses unknown names (with a
 * did-you-mean), referenced field names that would share a key, and a `maxAge` option
 * that is not a positive duration (0 and `""` included).
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
  const fields = Array.from(new Set(references))
  const maxSessions = resolveMaxSessions(options.references, fields)
  if (maxSessions instanceof SessionConfigError) return maxSessions
  const controls = resolveControls(options, maxAgeMillis, maxSessions)
  if (controls instanceof SessionConfigError) return controls
  if (options.onEvict !== undefined && typeof options.onEvict !== "function") return configError("onEvict", "must be a function")
  return { prefix: resolvePrefix(options), references: fields, maxAgeMillis, byteLength, limits, controls, onEvict: options.onEvict }
}

// `{ maxFields: undefined }` means the default, as an absent key does.
const withoutUndefined = <A extends object>(record: A): Partial<A> =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Partial<A>

/** v3: a per-call maxAge that is absent or falsy means the default. */
export const isDefaultMaxAge = (maxAge: MaxAgeInput | null | undefined): boolean =>
  maxAge === undefined || maxAge === null || maxAge === 0 || maxAge === ""

/** The TTL a call's `maxAge` stands for: the default when absent (v3: any falsy value), else a positive duration. */
export const ttlOf = (maxAge: MaxAgeInput | null | undefined, defaultMillis: number): number | InvalidSessionData => {
  if (isDefaultMaxAge(maxAge)) return defaultMillis
  return toMillis(maxAge!) ?? new InvalidSessionData({ reason: "maxAge must be a positive duration", field: "maxAge" })
}

/** `get`: the fields to read (with `id`, whose absence means "no session"), or all of them. */
export interface GetPlan {
  readonly id: string
  readonly fields: ReadonlyArray<string> | undefined
  /** Fields read only for the controls (the absolute deadline, the read-side update), dropped from the answer. */
  readonly drop: ReadonlyArray<string>
}

/** `set` / `setExisting`: the flat field/value list and the TTL in ms. */
export interface WritePlan {
  readonly id: string
  readonly pairs: ReadonlyArray<string>
  readonly ttl: number
}

/** `unset`: the fields to remove and the TTL in ms. */
export interface UnsetPlan {
  readonly id: string
  readonly fields: ReadonlyArray<string>
  readonly ttl: number
}

/** `touch`: the TTL in ms. */
export interface TouchPlan {
  readonly id: string
  readonly ttl: number
}

/**
 * `regenerate`: the new id, the TTL for a hash whose lifetime is not kept, whether the
 * remaining lifetime is kept, and the CSRF secret the new id gets when the session has one.
 */
export interface RegeneratePlan {
  readonly id: string
  readonly target: string
  readonly ttl: number
  readonly keepLifetime: boolean
  readonly secretField: string
  readonly secret: string
}

/** A referenced field and its value as stored. */
export interface ReferencePlan {
  readonly field: string
  readonly value: string
}

export type StoreInputError = InvalidSessionId | InvalidSessionData

/** The rules of one store, from its resolved options. */
export interface StoreRules extends ResolvedOptions {
  readonly newId: () => string
  readonly get: (id: string, fields?: ReadonlyArray<string> | null) => GetPlan | StoreInputError
  /** `client`: what the request tells of its device, recorded when tracked. */
  readonly write: (id: string, values: unknown, maxAge: MaxAgeInput | null | undefined, client?: ClientInfo) => WritePlan | StoreInputError
  readonly unset: (id: string, fields: ReadonlyArray<string>, maxAge: MaxAgeInput | null | undefined) => UnsetPlan | StoreInputError
  readonly touch: (id: string, maxAge: MaxAgeInput | null | undefined) => TouchPlan | StoreInputError
  readonly delete: (id: string) => string | InvalidSessionId
  readonly regenerate: (
    id: string,
    newId: string | undefined,
    maxAge: MaxAgeInput | null | undefined,
    options: RegenerateOptions | undefined
  ) => RegeneratePlan | StoreInputError
  readonly reference: (field: string, value: SessionValue) => ReferencePlan | InvalidSessionData
  /**
   * The session as the app sees it at `now` (epoch ms): `{}` once its absolute deadline
   * passed (a session a shorter `absoluteMaxAge` caught before its next write), without
   * the field the plan read only for that check.
   */
  readonly alive: (plan: GetPlan, session: SessionData, now: number) => SessionData
}

export const makeRules = (options: ResolvedOptions): StoreRules => {
  const { references, maxAgeMillis, byteLength, limits, controls } = options
  const isReference = new Set(references)
  // What a read of some fields also needs: the creation time for the absolute deadline, the
  // last-seen time to tell whether the read-side update is due.
  const controlReads: ReadonlyArray<readonly [boolean, string]> = [
    [controls.absoluteMaxAgeMillis !== undefined, CREATED_AT_FIELD],
    [controls.observesReads, LAST_SEEN_FIELD]
  ]
  // While controls are on, their fields are the store's: the app reads them, never writes them.
  const reserved = controls.on ? new Set(CONTROL_FIELDS) : undefined
  const refuseReserved = (fields: ReadonlyArray<string>, step: number): InvalidSessionData | undefined => {
    if (reserved === undefined) return undefined
    for (let i = 0; i < fields.length; i += step) {
      if (reserved.has(fields[i]!)) return new InvalidSessionData({ reason: "a field the store keeps (read-only)", field: fields[i]! })
    }
    return undefined
  }
  const ttlFor = (maxAge: MaxAgeInput | null | undefined) => ttlOf(maxAge, maxAgeMillis)
  const newId = () => randomBytes(byteLength).toString("base64url")
  return {
    ...options,
    newId,
    get: (id, fields) => {
      const badId = checkSessionId(id)
      if (badId !== undefined) return badId
      if (fields === undefined || fields === null) return { id, fields: undefined, drop: NOTHING }
      const list = checkFieldList(fields, limits, { allowId: true })
      if (!Array.isArray(list)) return list
      if (!list.includes(ID_FIELD)) list.push(ID_FIELD)
      let drop: Array<string> | undefined
      for (const [needed, field] of controlReads) {
        if (!needed || list.includes(field)) continue
        list.push(field)
        ;(drop ??= []).push(field)
      }
      return { id, fields: list, drop: drop ?? NOTHING }
    },
    write: (id, values, maxAge, client) => {
      const badId = checkSessionId(id)
      if (badId !== undefined) return badId
      const pairs = encodeValues(values, limits)
      if (!Array.isArray(pairs)) return pairs
      const bad = refuseReserved(pairs, 2)
      if (bad !== undefined) return bad
      const ttl = ttlFor(maxAge)
      if (typeof ttl !== "number") return ttl
      // `pairs` is this call's own array: the tracked pairs go on its end.
      for (const item of clientPairs(controls, client)) pairs.push(item)
      return { id, pairs, ttl }
    },
    unset: (id, fields, maxAge) => {
      const badId = checkSessionId(id)
      if (badId !== undefined) return badId
      const list = checkFieldList(fields, limits, { allowId: false })
      if (!Array.isArray(list)) return list
      const bad = refuseReserved(list, 1)
      if (bad !== undefined) return bad
      const ttl = ttlFor(maxAge)
      return typeof ttl === "number" ? { id, fields: list, ttl } : ttl
    },
    touch: (id, maxAge) => {
      const badId = checkSessionId(id)
      if (badId !== undefined) return badId
      const ttl = ttlFor(maxAge)
      return typeof ttl === "number" ? { id, ttl } : ttl
    },
    delete: (id) => checkSessionId(id) ?? id,
    regenerate: (id, newIdGiven, maxAge, regenerateOptions) => {
      const badId = checkSessionId(id) ?? (newIdGiven === undefined ? undefined : checkSessionId(newIdGiven))
      if (badId !== undefined) return badId
      const ttl = ttlFor(maxAge)
      if (typeof ttl !== "number") return ttl
      const secret = rotatedSecret(regenerateOptions?.csrfSecret)
      if (typeof secret !== "string") return secret
      const target = newIdGiven ?? newId()
      if (target === id) return new InvalidSessionId({ reason: "the new id must differ from the old one" })
      // No maxAge (v3: any falsy one): the new hash keeps the old one's remaining lifetime.
      return { id, target, ttl, keepLifetime: isDefaultMaxAge(maxAge), secretField: CSRF_SECRET_FIELD, secret }
    },
    reference: (field, value) => {
      if (!isReference.has(field)) return new InvalidSessionData({ reason: "not a configured reference field", field })
      const encoded = encodeValue(field, value, limits)
      return typeof encoded === "string" ? { field, value: encoded } : encoded
    },
    alive: (plan, session, now) => {
      const deadline = absoluteDeadline(controls, storedTime(session[CREATED_AT_FIELD]))
      if (deadline !== undefined && deadline <= now) return {}
      for (const field of plan.drop) delete session[field]
      return session
    }
  }
}

/** A session from the values of `fields` (HMGET's reply order, from index `from`); `{}` when `id` is missing (no session). */
export const sessionFromFields = (
  fields: ReadonlyArray<string>,
  values: ReadonlyArray<string | null | undefined>,
  from = 0
): SessionData => {
  const session: SessionData = {}
  if (values[from + fields.indexOf(ID_FIELD)] == null) return session
  for (let i = 0; i < fields.length; i++) {
    const value = values[from + i]
    if (value != null) assignField(session, fields[i]!, value)
  }
  return session
}
