// A backend is a set of actions (actions.ts) over the store's rules; this module makes
// the public `SessionStoreService` from one, and remembers the actions behind each
// service so the Promise facade and `Session` can run them without a fiber per command.
// A service made elsewhere (a test double) is adapted: its Effects become the actions.
import { Effect } from "effect"
import type { RedisClientService } from "../../RedisClient.js"
import type { InvalidSessionData, InvalidSessionId, RedisError } from "../../SessionError.js"
import { referenceKey, sessionKey } from "../keys.js"
import type { Action } from "./action.js"
import { fromEffect, map } from "./action.js"
import type { StoreRules } from "./plan.js"
import { toEffect } from "./run.js"
import type { MaxAgeInput, RegenerateOptions, SessionData, SessionStoreError, SessionStoreService, SessionValue } from "./types.js"

/** What `regenerate` did: the new id and the lifetime it kept (ms; unknown for an adapted service). */
export interface Regenerated {
  readonly id: string
  readonly ttl: number | undefined
}

/** The store's operations as actions: same inputs, results and errors as {@link SessionStoreService}. */
export interface StoreActions {
  readonly get: (id: string, fields?: ReadonlyArray<string> | null) => Action<SessionData, InvalidSessionId | InvalidSessionData | RedisError>
  readonly set: (id: string, values: Readonly<Record<string, SessionValue>>, maxAge?: MaxAgeInput | null) => Action<void, SessionStoreError>
  readonly setExisting: (
    id: string,
    values: Readonly<Record<string, SessionValue>>,
    maxAge?: MaxAgeInput | null
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
  readonly deleteByReference: (field: string, value: SessionValue) => Action<number, RedisError | InvalidSessionData>
}

/** A store's actions and the client their commands go to (none for the memory store). */
export interface Backend {
  readonly actions: StoreActions
  readonly redis: RedisClientService | undefined
}

const backends = new WeakMap<SessionStoreService, Backend>()

/** The public service over a backend's actions. */
export const makeService = (rules: StoreRules, backend: Backend): SessionStoreService => {
  const { actions, redis } = backend
  const { prefix, references, maxAgeMillis, byteLength, limits } = rules
  // Built when the Effect runs, so its inputs are checked then (and each run checks again).
  const run = <A, E>(thunk: () => Action<A, E>) => Effect.suspend(() => toEffect(redis, thunk()))
  const service: SessionStoreService = {
    prefix,
    references,
    maxAgeMillis,
    byteLength,
    limits,
    createSessionId: Effect.sync(rules.newId),
    getSessionKey: (id) => sessionKey(prefix, id),
    getReferenceKey: (field, value) => referenceKey(prefix, field, String(value)),
    get: (id, fields) => run(() => actions.get(id, fields)),
    set: (id, values, maxAge) => run(() => actions.set(id, values, maxAge)),
    setExisting: (id, values, maxAge) => run(() => actions.setExisting(id, values, maxAge)),
    unset: (id, fields, maxAge) => run(() => actions.unset(id, fields, maxAge)),
    touch: (id, maxAge) => run(() => actions.touch(id, maxAge)),
    delete: (id) => run(() => actions.delete(id)),
    regenerate: (id, newId, maxAge, options) => run(() => map(actions.regenerate(id, newId, maxAge, options), (done) => done?.id)),
    listByReference: (field, value) => run(() => actions.listByReference(field, value)),
    deleteByReference: (field, value) => run(() => actions.deleteByReference(field, value))
  }
  backends.set(service, backend)
  return service
}

/** The actions behind a service: its backend's, or its own Effects as actions. */
export const backendOf = (service: SessionStoreService): Backend => {
  let backend = backends.get(service)
  if (backend === undefined) {
    backend = { actions: adapt(service), redis: undefined }
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
    map(fromEffect(service.regenerate(id, newId, maxAge, options)), (next) => (next === undefined ? undefined : { id: next, ttl: undefined })),
  listByReference: (field, value) => fromEffect(service.listByReference(field, value)),
  deleteByReference: (field, value) => fromEffect(service.deleteByReference(field, value))
})
