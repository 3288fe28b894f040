// A backend is a set of actions (actions.ts) over the store's rules; this module makes
// the public `SessionStoreService` from one, and remembers the actions behind each
// service so the Promise facade and `Session` can run them without a fiber per command.
// A service made elsewhere (a test double) is adapted: its Effects become the actions.
import { Chunk, Effect, Option, Stream } from "effect"
import type { RedisClientService } from "../../RedisClient.js"
import type { InvalidSessionData, InvalidSessionId, RedisError } from "../../SessionError.js"
import { referenceKey, sessionKey } from "../keys.js"
import { checkSessionId } from "../validate.js"
import type { Action } from "./action.js"
import { andThen, done, failed, fromEffect, map } from "./action.js"
import type { StoreRules } from "./plan.js"
import type { Telemetry } from "./observability.js"
import { makeTelemetry, observed } from "./observability.js"
import { labelled, observeClient, toEffect } from "./run.js"
import type { ClientInfo, Controls } from "./controls.js"
import { NO_CONTROLS } from "./controls.js"
import type {
  MaxAgeInput,
  RegenerateOptions,
  SessionData,
  SessionInfo,
  SessionLifetime,
  SessionStoreError,
  SessionStoreService,
  SessionValue
} from "./types.js"

/** What `regenerate` did: the new id and the lifetime it kept (ms; unknown for an adapted service). */
export interface Regenerated {
  readonly id: string
  readonly ttl: number | undefined
}

/** What a Session read found: the session, and the lifetime it was renewed to (rolling), if it was. */
export interface ReadResult {
  readonly session: SessionData
  /** The new idle lifetime in ms when this read renewed it (the cookie follows), else `undefined`. */
  readonly renewedTtl: number | undefined
}

/** One page of `listSessions`: the live sessions it found and the cursor of the next ("0": the last page). */
export interface SessionPage {
  readonly sessions: ReadonlyArray<SessionInfo>
  readonly cursor: string
}

/** The store's operations as actions: same inputs, results and errors as {@link SessionStoreService}. */
export interface StoreActions {
  readonly get: (
    id: string,
    fields?: ReadonlyArray<string> | null
  ) => Action<SessionData, InvalidSessionId | InvalidSessionData | RedisError>
  /**
   * A Session's read: `get`, plus (with controls that observe reads) the read-side update at
   * most once per `rollingInterval`: last-seen (and tracked client data) recorded, the idle
   * lifetime renewed when `rolling`, the creation time recorded when missing. Never for a
   * session being revoked.
   */
  readonly read: (
    id: string,
    fields: ReadonlyArray<string> | null | undefined,
    client: ClientInfo | undefined
  ) => Action<ReadResult, SessionStoreError>
  readonly set: (
    id: string,
    values: Readonly<Record<string, SessionValue>>,
    maxAge?: MaxAgeInput | null,
    client?: ClientInfo
  ) => Action<void, SessionStoreError>
  readonly setExisting: (
    id: string,
    values: Readonly<Record<string, SessionValue>>,
    maxAge?: MaxAgeInput | null,
    client?: ClientInfo
  ) => Action<boolean, SessionStoreError>
  readonly unset: (id: string, fields: ReadonlyArray<string>, maxAge?: MaxAgeInput | null) => Action<boolean, SessionStoreError>
  readonly touch: (id: string, maxAge?: MaxAgeInput | null) => Action<boolean, SessionStoreError>
  readonly delete: (id: string) => Action<boolean, SessionStoreError>
  readonly regenerate: (
    id: string,
    newId?: string,
    maxAge?: MaxAgeInput | null,
    options?: RegenerateOptions
  ) => Action<Regenerated | undefined, SessionStoreError>
  readonly listByReference: (field: string, value: SessionValue) => Action<Array<string>, RedisError | InvalidSessionData>
  /** `except`: an id (already checked) to spare. */
  readonly deleteByReference: (field: string, value: SessionValue, except?: string) => Action<number, RedisError | InvalidSessionData>
  /** One page of `listSessions`, from `cursor` ("0" for the first). */
  readonly listSessionsPage: (field: string, value: SessionValue, cursor: string) => Action<SessionPage, RedisError | InvalidSessionData>
  readonly lifetime: (id: string) => Action<SessionLifetime | undefined, SessionStoreError>
  /** Deletes the session only when its `field` holds `value`, in one atomic step; whether it did. */
  readonly deleteHolding: (id: string, field: string, value: SessionValue) => Action<boolean, SessionStoreError>
}

/** A store's actions and the client their commands go to (none for the memory store). */
export interface Backend {
  readonly actions: StoreActions
  readonly redis: RedisClientService | undefined
  /** `db.system.name` of its spans and metrics; by default `"redis"` with a client, else `"memory"`. */
  readonly system?: string | undefined
}

/** A backend as the runners see it: its actions label their protocols, its telemetry and controls. */
export interface ObservedBackend extends Backend {
  readonly telemetry: Telemetry
  /** The store's account controls (none for an adapted service). */
  readonly controls: Controls
}

const backends = new WeakMap<SessionStoreService, ObservedBackend>()

// The backend's actions, each protocol (an Effect step) labelled with its operation, so
// a runner can give it a span and metrics. A command names its operation itself, so the
// hot path (one command) pays a call and a tag check.
// A read that observes nothing is a plain get (as the Redis backends' command names it).
const labelActions = (actions: StoreActions, readOperation: string): StoreActions => ({
  get: (id, fields) => labelled("SessionStore.get", actions.get(id, fields)),
  set: (id, values, maxAge, client) => labelled("SessionStore.set", actions.set(id, values, maxAge, client)),
  setExisting: (id, values, maxAge, client) => labelled("SessionStore.setExisting", actions.setExisting(id, values, maxAge, client)),
  unset: (id, fields, maxAge) => labelled("SessionStore.unset", actions.unset(id, fields, maxAge)),
  touch: (id, maxAge) => labelled("SessionStore.touch", actions.touch(id, maxAge)),
  delete: (id) => labelled("SessionStore.delete", actions.delete(id)),
  regenerate: (id, newId, maxAge, options) => labelled("SessionStore.regenerate", actions.regenerate(id, newId, maxAge, options)),
  listByReference: (field, value) => labelled("SessionStore.listByReference", actions.listByReference(field, value)),
  deleteByReference: (field, value, except) => labelled("SessionStore.deleteByReference", actions.deleteByReference(field, value, except)),
  read: (id, fields, client) => labelled(readOperation, actions.read(id, fields, client)),
  listSessionsPage: (field, value, cursor) => labelled("SessionStore.listSessions", actions.listSessionsPage(field, value, cursor)),
  lifetime: (id) => labelled("SessionStore.lifetime", actions.lifetime(id)),
  deleteHolding: (id, field, value) => labelled("SessionStore.deleteHolding", actions.deleteHolding(id, field, value))
})

const observe = (backend: Backend, prefix: string, references: number, controls: Controls): ObservedBackend => {
  const system = backend.system ?? (backend.redis === undefined ? "memory" : "redis")
  const telemetry = makeTelemetry({ system, redis: backend.redis, prefix, references })
  if (backend.redis !== undefined) observeClient(backend.redis, telemetry)
  const actions = labelActions(backend.actions, controls.observesReads ? "SessionStore.read" : "SessionStore.get")
  return { actions, redis: backend.redis, system, telemetry, controls }
}

/** The public service over a backend's actions. */
export const makeService = (rules: StoreRules, plain: Backend): SessionStoreService => {
  const { prefix, references, maxAgeMillis, byteLength, limits } = rules
  const backend = observe(plain, prefix, references.length, rules.controls)
  const { actions, redis, telemetry } = backend
  // Built when the Effect runs, so its inputs are checked then (and each run checks again).
  // Each method is one operation: one span (refused inputs included) and its metrics.
  const traced = <A, E>(operation: string, thunk: () => Action<A, E>) => {
    const observedOperation = telemetry.of(operation)
    return observed(
      observedOperation,
      Effect.suspend(() => toEffect(redis, thunk()))
    )
  }
  const service: SessionStoreService = {
    prefix,
    references,
    maxAgeMillis,
    byteLength,
    limits,
    createSessionId: Effect.sync(rules.newId),
    getSessionKey: (id) => sessionKey(prefix, id),
    getReferenceKey: (field, value) => referenceKey(prefix, field, String(value)),
    get: (id, fields) => traced("SessionStore.get", () => actions.get(id, fields)),
    set: (id, values, maxAge) => traced("SessionStore.set", () => actions.set(id, values, maxAge)),
    setExisting: (id, values, maxAge) => traced("SessionStore.setExisting", () => actions.setExisting(id, values, maxAge)),
    unset: (id, fields, maxAge) => traced("SessionStore.unset", () => actions.unset(id, fields, maxAge)),
    touch: (id, maxAge) => traced("SessionStore.touch", () => actions.touch(id, maxAge)),
    delete: (id) => traced("SessionStore.delete", () => actions.delete(id)),
    regenerate: (id, newId, maxAge, options) =>
      traced("SessionStore.regenerate", () => map(actions.regenerate(id, newId, maxAge, options), (done) => done?.id)),
    listByReference: (field, value) => traced("SessionStore.listByReference", () => actions.listByReference(field, value)),
    deleteByReference: (field, value, options) =>
      traced("SessionStore.deleteByReference", (): Action<number, RedisError | InvalidSessionData | InvalidSessionId> => {
        const except = options?.except
        if (except === undefined) return actions.deleteByReference(field, value)
        const bad = checkSessionId(except)
        return bad === undefined ? actions.deleteByReference(field, value, except) : failed(bad)
      }),
    // Page by page, each page its own span: memory stays bounded by a page, whatever the set's size.
    listSessions: (field, value) =>
      Stream.paginateChunkEffect("0", (cursor: string | undefined) =>
        Effect.map(
          traced("SessionStore.listSessions", () => actions.listSessionsPage(field, value, cursor ?? "0")),
          (page) => [Chunk.fromIterable(page.sessions), page.cursor === "0" ? Option.none() : Option.some(page.cursor)] as const
        )
      ),
    lifetime: (id) => traced("SessionStore.lifetime", () => actions.lifetime(id))
  }
  backends.set(service, backend)
  return service
}

/** The actions behind a service: its backend's, or its own Effects as actions. */
export const backendOf = (service: SessionStoreService): ObservedBackend => {
  let backend = backends.get(service)
  if (backend === undefined) {
    const { prefix, references } = service
    backend = observe(
      { actions: adapt(service), redis: undefined, system: undefined },
      prefix,
      references.length,
      NO_CONTROLS(references.length)
    )
    backends.set(service, backend)
  }
  return backend
}

const adapt = (service: SessionStoreService): StoreActions => ({
  get: (id, fields) => fromEffect(service.get(id, fields ?? undefined)),
  set: (id, values, maxAge) => fromEffect(service.set(id, values, maxAge)),
  setExisting: (id, values, maxAge) => fromEffect(service.setExisting(id, values, maxAge)),
  unset: (id, fields, maxAge) => fromEffect(service.unset(id, fields, maxAge)),
  touch: (id, maxAge) => fromEffect(service.touch(id, maxAge)),
  delete: (id) => fromEffect(service.delete(id)),
  regenerate: (id, newId, maxAge, options) =>
    map(fromEffect(service.regenerate(id, newId, maxAge, options)), (next) =>
      next === undefined ? undefined : { id: next, ttl: undefined }
    ),
  listByReference: (field, value) => fromEffect(service.listByReference(field, value)),
  deleteByReference: (field, value, except) =>
    fromEffect(service.deleteByReference(field, value, except === undefined ? undefined : { except })) as Action<
      number,
      RedisError | InvalidSessionData
    >,
  // A double's reads are plain gets (no rolling), its pages one whole listing.
  read: (id, fields) => map(fromEffect(service.get(id, fields ?? undefined)), (session) => ({ session, renewedTtl: undefined })),
  listSessionsPage: (field, value) =>
    map(fromEffect(Stream.runCollect(service.listSessions(field, value))), (all) => ({ sessions: Chunk.toArray(all), cursor: "0" })),
  lifetime: (id) => fromEffect(service.lifetime(id)),
  // Not atomic on a double: its own get, then its delete.
  deleteHolding: (id, field, value) =>
    andThen(fromEffect(service.get(id, [field])), (session) =>
      session[field] === String(value) ? fromEffect(service.delete(id)) : done(false)
    )
})
