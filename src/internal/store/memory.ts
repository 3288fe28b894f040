// The in-memory backend: the same semantics as the Redis store, for development and
// tests. Every operation checks its inputs with the shared rules (so errors are those of
// every backend), then does its work in one synchronous block that reads the time from
// Effect's Clock (so TestClock drives expiry) and first removes what has expired.
//
// Atomicity, and so the revocation guarantee, comes for free: the work of an operation
// has no await and no Effect step inside, so nothing can interleave with it. A
// `deleteByReference` removes every holder of the value before any other operation runs,
// and an id it removed can be neither written (`setExisting`/`touch`/`unset` see no
// session) nor moved (`regenerate` answers undefined) afterwards.
import { Effect } from "effect"
import { InvalidSessionId } from "../../SessionError.js"
import { assignField, ID_FIELD } from "../validate.js"
import type { Action } from "./action.js"
import { andThen, checked, checkedData, done, failed, fromEffect } from "./action.js"
import type { GetPlan, RegeneratePlan, StoreRules, UnsetPlan, WritePlan } from "./plan.js"
import type { Regenerated } from "./service.js"
import { makeService } from "./service.js"
import type { SessionData, SessionStoreService } from "./types.js"

/** What a memory store holds, for tests of its memory bound. */
export interface MemoryStats {
  /** Sessions stored (expired ones are removed at the start of the next operation). */
  readonly sessions: number
  /** Non-empty reference sets (empty ones are removed). */
  readonly referenceSets: number
  /** Entries of the expiry heap, outdated ones included (at most about twice `sessions`). */
  readonly heapEntries: number
}

interface Session {
  // A Map, not a record: a field named `__proto__` is data like any other.
  readonly fields: Map<string, string>
  /** Epoch ms (Clock time) from which the session is gone. */
  expiresAt: number
}

/** "`id` expires at `at`"; outdated once the session is gone or got another expiry. */
interface Due {
  readonly at: number
  readonly id: string
}

// The heap may hold this many outdated entries beyond the live sessions' count before it is
// rebuilt: a rebuild costs O(live) and drops at least `live + SLACK` entries, so amortised
// O(1) per write, and a session written 10 000 times leaves a heap of a few entries.
const SLACK = 16

const stats = new WeakMap<SessionStoreService, () => MemoryStats>()

/** The sizes behind a memory store; `undefined` for any other store. */
export const memoryStats = (service: SessionStoreService): MemoryStats | undefined => stats.get(service)?.()

/** What a memory store holds now, read-only, for tests (sessions past their time included until the next sweep). */
export interface MemoryContents {
  /** The session's expiry (Clock epoch ms), or `undefined` when it holds none. */
  readonly expiresAt: (id: string) => number | undefined
  /** The ids the reference index holds for a value. */
  readonly members: (field: string, value: string) => ReadonlyArray<string>
}

const contents = new WeakMap<SessionStoreService, MemoryContents>()

/** See {@link MemoryContents}; `undefined` for any other store. */
export const memoryContents = (service: SessionStoreService): MemoryContents | undefined => contents.get(service)

/** The in-memory store over `rules`: its own sessions, dropped with it. */
export const makeMemoryStore = (rules: StoreRules): SessionStoreService => {
  const referenced = new Set(rules.references)
  const sessions = new Map<string, Session>()
  // (field, value) → ids of the live sessions holding it. Keyed `${field}\0${value}`:
  // field names cannot hold control characters, so the first NUL splits the key.
  const referenceSets = new Map<string, Set<string>>()
  const heap: Array<Due> = []

  // ---- expiry heap: a binary min-heap on `at` ----
  const swap = (i: number, j: number) => {
    const a = heap[i]!
    heap[i] = heap[j]!
    heap[j] = a
  }
  const siftUp = (i: number) => {
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= heap[i]!.at) return
      swap(i, parent)
      i = parent
    }
  }
  const siftDown = (i: number) => {
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let least = i
      if (left < heap.length && heap[left]!.at < heap[least]!.at) least = left
      if (right < heap.length && heap[right]!.at < heap[least]!.at) least = right
      if (least === i) return
      swap(i, least)
      i = least
    }
  }
  const popDue = () => {
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      siftDown(0)
    }
  }
  const rebuild = () => {
    heap.length = 0
    for (const [id, session] of sessions) heap.push({ at: session.expiresAt, id })
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i)
  }

  // ---- reference index: exact, since every change of a referenced field goes through here ----
  const addReference = (field: string, value: string, id: string) => {
    const key = `${field}\0${value}`
    const set = referenceSets.get(key)
    if (set === undefined) referenceSets.set(key, new Set([id]))
    else set.add(id)
  }
  const removeReference = (field: string, value: string, id: string) => {
    const key = `${field}\0${value}`
    const set = referenceSets.get(key)
    if (set !== undefined && set.delete(id) && set.size === 0) referenceSets.delete(key)
  }
  const forEachReference = (session: Session, f: (field: string, value: string) => void) => {
    for (const field of referenced) {
      const value = session.fields.get(field)
      if (value !== undefined) f(field, value)
    }
  }

  const expireAt = (id: string, session: Session, at: number) => {
    session.expiresAt = at
    // The entry it had is left in the heap (lazy deletion): found outdated when popped.
    heap.push({ at, id })
    siftUp(heap.length - 1)
  }
  const store = (id: string, fields: Map<string, string>, at: number) => {
    const session: Session = { fields, expiresAt: at }
    sessions.set(id, session)
    forEachReference(session, (field, value) => addReference(field, value, id))
    expireAt(id, session, at)
  }
  const remove = (id: string): boolean => {
    const session = sessions.get(id)
    if (session === undefined) return false
    forEachReference(session, (field, value) => removeReference(field, value, id))
    sessions.delete(id)
    return true
  }

  // Removes every session whose time has come (a session lives while now < expiresAt),
  // so expired data is gone, not only hidden; then bounds the outdated heap entries.
  const sweep = (now: number) => {
    while (heap.length > 0 && heap[0]!.at <= now) {
      const { at, id } = heap[0]!
      popDue()
      if (sessions.get(id)?.expiresAt === at) remove(id)
    }
    if (heap.length > 2 * sessions.size + SLACK) rebuild()
  }

  // The clock is read inside the same synchronous block as the work, so the work sees
  // exactly the sessions alive at `now`.
  const atNow = <A>(work: (now: number) => A): Action<A, never> =>
    fromEffect(
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.unsafeCurrentTimeMillis()
          sweep(now)
          return work(now)
        })
      )
    )

  const read = (plan: GetPlan): SessionData => {
    const session = sessions.get(plan.id)
    // A fresh object every time: mutating it never changes the store.
    const data: SessionData = {}
    if (session === undefined) return data
    if (plan.fields === undefined) {
      for (const [field, value] of session.fields) assignField(data, field, value)
    } else {
      for (const field of plan.fields) {
        const value = session.fields.get(field)
        if (value !== undefined) assignField(data, field, value)
      }
    }
    return data
  }

  const write = (plan: WritePlan, onlyExisting: boolean, now: number): boolean => {
    const { id, pairs } = plan
    let session = sessions.get(id)
    if (session === undefined) {
      if (onlyExisting) return false
      session = { fields: new Map([[ID_FIELD, id]]), expiresAt: now + plan.ttl }
      sessions.set(id, session)
    }
    for (let i = 0; i < pairs.length; i += 2) {
      const field = pairs[i]!
      const value = pairs[i + 1]!
      if (referenced.has(field)) {
        const old = session.fields.get(field)
        if (old !== value) {
          if (old !== undefined) removeReference(field, old, id)
          addReference(field, value, id)
        }
      }
      session.fields.set(field, value)
    }
    expireAt(id, session, now + plan.ttl)
    return true
  }

  const unset = (plan: UnsetPlan, now: number): boolean => {
    const session = sessions.get(plan.id)
    if (session === undefined) return false
    for (const field of plan.fields) {
      const old = session.fields.get(field)
      if (old === undefined) continue
      if (referenced.has(field)) removeReference(field, old, plan.id)
      session.fields.delete(field)
    }
    expireAt(plan.id, session, now + plan.ttl)
    return true
  }

  const regenerate = (plan: RegeneratePlan, now: number): Regenerated | undefined | InvalidSessionId => {
    const session = sessions.get(plan.id)
    if (session === undefined) return undefined
    if (sessions.has(plan.target)) return new InvalidSessionId({ reason: "the new id is already in use" })
    // A live session has expiresAt > now (the sweep ran), so the kept lifetime is positive.
    const ttl = plan.keepLifetime ? session.expiresAt - now : plan.ttl
    remove(plan.id)
    const { fields } = session
    fields.set(ID_FIELD, plan.target)
    // Login rotates the CSRF secret; a session without one gets none.
    if (fields.has(plan.secretField)) fields.set(plan.secretField, plan.secret)
    store(plan.target, fields, now + ttl)
    return { id: plan.target, ttl }
  }

  const holders = (field: string, value: string): Array<string> => Array.from(referenceSets.get(`${field}\0${value}`) ?? [])

  const service = makeService(rules, {
    redis: undefined,
    actions: {
      get: (id, fields) => checked(rules.get(id, fields), (plan) => atNow(() => read(plan))),
      set: (id, values, maxAge) =>
        checked(rules.write(id, values, maxAge), (plan) =>
          atNow((now) => {
            write(plan, false, now)
          })
        ),
      setExisting: (id, values, maxAge) => checked(rules.write(id, values, maxAge), (plan) => atNow((now) => write(plan, true, now))),
      unset: (id, fields, maxAge) => checked(rules.unset(id, fields, maxAge), (plan) => atNow((now) => unset(plan, now))),
      touch: (id, maxAge) =>
        checked(rules.touch(id, maxAge), (plan) =>
          atNow((now) => {
            const session = sessions.get(plan.id)
            if (session !== undefined) expireAt(plan.id, session, now + plan.ttl)
            return session !== undefined
          })
        ),
      delete: (id) => checked(rules.delete(id), (plan) => atNow(() => remove(plan))),
      regenerate: (id, newId, maxAge, options) =>
        checked(rules.regenerate(id, newId, maxAge, options), (plan) =>
          andThen(
            atNow((now) => regenerate(plan, now)),
            (result) => (result instanceof InvalidSessionId ? failed(result) : done(result))
          )
        ),
      listByReference: (field, value) => checkedData(rules.reference(field, value), (plan) => atNow(() => holders(plan.field, plan.value))),
      // Copied before deleting: `remove` shrinks (and finally drops) the set being read.
      deleteByReference: (field, value) =>
        checkedData(rules.reference(field, value), (plan) => atNow(() => holders(plan.field, plan.value).filter(remove).length))
    }
  })
  stats.set(service, () => ({ sessions: sessions.size, referenceSets: referenceSets.size, heapEntries: heap.length }))
  contents.set(service, {
    expiresAt: (id) => sessions.get(id)?.expiresAt,
    members: holders
  })
  return service
}
