// The in-memory backend: the same semantics as the Redis store, for development and
// tests. Every operation checks its inputs with the shared rules (so errors are those of
// every backend), then does its work in one synchronous block that reads the time from
// Effect's Clock (so TestClock drives expiry) and first removes what has expired.
//
// Atomicity, and so the revocation guarantee, comes for free: the work of an operation
// has no await and no Effect step inside, so nothing can interleave with it. A
// `deleteByReference` removes every holder of the value before any other operation runs,
// and an id it removed can be neither written (`setExisting`/`touch`/`unset` see no
// session) nor moved (`regenerate` answers undefined) afterwards. A cap's evictions
// happen in the block of the write that exceeded it.
import { Effect } from "effect"
import { InvalidSessionId } from "../../SessionError.js"
import { assignField, ID_FIELD } from "../validate.js"
import type { Action } from "./action.js"
import { andThen, checked, checkedData, done, failed, fromEffect } from "./action.js"
import type { ClientInfo } from "./controls.js"
import { clientPairs, CREATED_AT_FIELD, IP_FIELD, LAST_SEEN_FIELD, readUpdateDue, storedTime, USER_AGENT_FIELD } from "./controls.js"
import type { Session } from "./memory/sessions.js"
import { makeSessions } from "./memory/sessions.js"
import type { GetPlan, RegeneratePlan, StoreRules, UnsetPlan, WritePlan } from "./plan.js"
import { SCAN_BATCH } from "./plan.js"
import type { ReadResult, Regenerated, SessionPage } from "./service.js"
import { makeService } from "./service.js"
import type { MaxAgeInput, SessionData, SessionEviction, SessionInfo, SessionLifetime, SessionStoreService } from "./types.js"

/** What a memory store holds, for tests of its memory bound. */
export interface MemoryStats {
  /** Sessions stored (expired ones are removed at the start of the next operation). */
  readonly sessions: number
  /** Non-empty reference sets (empty ones are removed). */
  readonly referenceSets: number
  /** Entries of the expiry heap, outdated ones included (at most about twice `sessions`). */
  readonly heapEntries: number
}

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

// A cursor is the sequence number of the last member listed (memory/references.ts).
const cursorNumber = (cursor: string): number => (/^[0-9]{1,15}$/.test(cursor) ? Number(cursor) : 0)

/** The in-memory store over `rules`: its own sessions, dropped with it. */
export const makeMemoryStore = (rules: StoreRules): SessionStoreService => {
  const { controls, maxAgeMillis } = rules
  const state = makeSessions(rules.references, controls)
  const { sessions, index } = state
  const capOf = new Map(rules.references.map((field, i) => [field, controls.maxSessions[i] ?? 0] as const))

  // Told after the write's block: a callback that throws changes nothing.
  const announce = (evictions: ReadonlyArray<SessionEviction>) => {
    for (const eviction of evictions) {
      try {
        rules.onEvict?.(eviction)
      } catch {
        // ignored, as documented
      }
    }
  }

  // The clock is read inside the same synchronous block as the work, so the work sees
  // exactly the sessions alive at `now`.
  const atNow = <A>(work: (now: number) => A): Action<A, never> =>
    fromEffect(
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.unsafeCurrentTimeMillis()
          state.sweep(now)
          return work(now)
        })
      )
    )

  const dataOf = (plan: GetPlan, session: Session | undefined): SessionData => {
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

  // The idle lifetime from now, within the absolute deadline.
  const renew = (id: string, session: Session, ttl: number, now: number): number => {
    const at = state.bounded(session, now + ttl)
    state.expireAt(id, session, at)
    return at - now
  }

  const write = (plan: WritePlan, onlyExisting: boolean, now: number): { wrote: boolean; evictions: Array<SessionEviction> } => {
    const { id, pairs } = plan
    const evictions: Array<SessionEviction> = []
    let session = sessions.get(id)
    if (session === undefined) {
      if (onlyExisting) return { wrote: false, evictions }
      session = state.create(id, now)
    }
    const joined: Array<string> = []
    for (let i = 0; i < pairs.length; i += 2) {
      if (state.setField(id, session, pairs[i]!, pairs[i + 1]!) && (capOf.get(pairs[i]!) ?? 0) > 0) joined.push(pairs[i]!)
    }
    state.stamp(session, now)
    renew(id, session, plan.ttl, now)
    for (const field of joined) {
      const eviction = state.enforceCap(id, field, session.fields.get(field)!, capOf.get(field)!)
      if (eviction !== undefined) evictions.push(eviction)
    }
    return { wrote: true, evictions }
  }

  const unset = (plan: UnsetPlan, now: number): boolean => {
    const session = sessions.get(plan.id)
    if (session === undefined) return false
    for (const field of plan.fields) state.deleteField(plan.id, session, field)
    state.stamp(session, now)
    renew(plan.id, session, plan.ttl, now)
    return true
  }

  const regenerate = (plan: RegeneratePlan, now: number): Regenerated | undefined | InvalidSessionId => {
    const session = sessions.get(plan.id)
    if (session === undefined) return undefined
    if (sessions.has(plan.target)) return new InvalidSessionId({ reason: "the new id is already in use" })
    // A live session has expiresAt > now (the sweep ran), so the kept lifetime is positive;
    // the absolute deadline follows the data (its creation time is kept).
    const at = state.bounded(session, plan.keepLifetime ? session.expiresAt : now + plan.ttl)
    state.remove(plan.id)
    const { fields } = session
    fields.set(ID_FIELD, plan.target)
    // Login rotates the CSRF secret; a session without one gets none.
    if (fields.has(plan.secretField)) fields.set(plan.secretField, plan.secret)
    state.stamp(session, now)
    state.store(plan.target, fields, at)
    return { id: plan.target, ttl: at - now }
  }

  // A Session's read: the data as read, then (when due) the read-side update.
  const read = (plan: GetPlan, client: ClientInfo | undefined, now: number): ReadResult => {
    const session = sessions.get(plan.id)
    const data = rules.alive(plan, dataOf(plan, session), now)
    if (session === undefined || !readUpdateDue(controls, storedTime(session.fields.get(LAST_SEEN_FIELD)), now)) {
      return { session: data, renewedTtl: undefined }
    }
    state.stamp(session, now)
    const pairs = clientPairs(controls, client)
    for (let i = 0; i < pairs.length; i += 2) session.fields.set(pairs[i]!, pairs[i + 1]!)
    if (!controls.rolling) return { session: data, renewedTtl: undefined }
    // Never shorter than it is: a session written with a longer maxAge keeps it.
    return { session: data, renewedTtl: renew(plan.id, session, Math.max(session.expiresAt - now, maxAgeMillis), now) }
  }

  const lifetime = (session: Session): SessionLifetime => {
    const createdAt = storedTime(session.fields.get(CREATED_AT_FIELD))
    const absoluteExpiresAt = state.deadline(session)
    return {
      ...(createdAt === undefined ? {} : { createdAt }),
      expiresAt: session.expiresAt,
      ...(absoluteExpiresAt === undefined ? {} : { absoluteExpiresAt })
    }
  }

  const info = (id: string, session: Session): SessionInfo => {
    const lastSeenAt = storedTime(session.fields.get(LAST_SEEN_FIELD))
    const userAgent = session.fields.get(USER_AGENT_FIELD)
    const ip = session.fields.get(IP_FIELD)
    return {
      id,
      ...lifetime(session),
      ...(lastSeenAt === undefined ? {} : { lastSeenAt }),
      ...(userAgent === undefined ? {} : { userAgent }),
      ...(ip === undefined ? {} : { ip })
    }
  }

  // The index is exact (the sweep ran): every member is a live session holding the value.
  const page = (field: string, value: string, cursor: string): SessionPage => {
    const { ids, next } = index.page(field, value, cursorNumber(cursor), SCAN_BATCH)
    return { sessions: ids.map((id) => info(id, sessions.get(id)!)), cursor: String(next) }
  }

  const setAction = (onlyExisting: boolean) => (id: string, values: unknown, maxAge: MaxAgeInput | null | undefined, client?: ClientInfo) =>
    checked(rules.write(id, values, maxAge, client), (plan) =>
      atNow((now) => {
        const { wrote, evictions } = write(plan, onlyExisting, now)
        announce(evictions)
        return wrote
      })
    )

  const service = makeService(rules, {
    redis: undefined,
    actions: {
      get: (id, fields) =>
        checked(rules.get(id, fields), (plan) => atNow((now) => rules.alive(plan, dataOf(plan, sessions.get(plan.id)), now))),
      read: (id, fields, client) =>
        checked(rules.get(id, fields), (plan) =>
          atNow((now) =>
            controls.observesReads
              ? read(plan, client, now)
              : { session: rules.alive(plan, dataOf(plan, sessions.get(plan.id)), now), renewedTtl: undefined }
          )
        ),
      set: (id, values, maxAge, client) => andThen(setAction(false)(id, values, maxAge, client), () => done(undefined)),
      setExisting: (id, values, maxAge, client) => setAction(true)(id, values, maxAge, client),
      unset: (id, fields, maxAge) => checked(rules.unset(id, fields, maxAge), (plan) => atNow((now) => unset(plan, now))),
      touch: (id, maxAge) =>
        checked(rules.touch(id, maxAge), (plan) =>
          atNow((now) => {
            const session = sessions.get(plan.id)
            if (session === undefined) return false
            state.stamp(session, now)
            renew(plan.id, session, plan.ttl, now)
            return true
          })
        ),
      delete: (id) => checked(rules.delete(id), (plan) => atNow(() => state.remove(plan))),
      regenerate: (id, newId, maxAge, options) =>
        checked(rules.regenerate(id, newId, maxAge, options), (plan) =>
          andThen(
            atNow((now) => regenerate(plan, now)),
            (result) => (result instanceof InvalidSessionId ? failed(result) : done(result))
          )
        ),
      listByReference: (field, value) =>
        checkedData(rules.reference(field, value), (plan) => atNow(() => index.members(plan.field, plan.value))),
      // Copied before deleting (`members` is a copy): `remove` shrinks (and finally drops) the set.
      deleteByReference: (field, value, except) =>
        checkedData(rules.reference(field, value), (plan) =>
          atNow(() => index.members(plan.field, plan.value).filter((id) => id !== except && state.remove(id)).length)
        ),
      listSessionsPage: (field, value, cursor) =>
        checkedData(rules.reference(field, value), (plan) => atNow(() => page(plan.field, plan.value, cursor))),
      lifetime: (id) =>
        checked(rules.delete(id), (plan) =>
          atNow(() => {
            const session = sessions.get(plan)
            return session === undefined ? undefined : lifetime(session)
          })
        ),
      deleteHolding: (id, field, value) =>
        checked(rules.delete(id), (plan) =>
          checkedData(rules.reference(field, value), (reference) =>
            atNow(() => sessions.get(plan)?.fields.get(reference.field) === reference.value && state.remove(plan))
          )
        )
    }
  })
  stats.set(service, () => ({ sessions: sessions.size, referenceSets: index.size(), heapEntries: state.heapEntries() }))
  contents.set(service, {
    expiresAt: (id) => sessions.get(id)?.expiresAt,
    members: index.members
  })
  return service
}
