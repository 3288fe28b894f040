// What the memory store holds and the steps its operations are made of: sessions with
// their expiry (the heap), the exact reference index, and the account controls' rules
// (creation and last-seen stamps, the absolute deadline, the per-value caps). Each step
// is synchronous; an operation (memory.ts) runs its steps in one block at one `now`.
import type { Controls } from "../controls.js"
import { absoluteDeadline, CREATED_AT_FIELD, evictionOrder, LAST_SEEN_FIELD, storedTime } from "../controls.js"
import type { SessionEviction } from "../types.js"
import { ID_FIELD } from "../../validate.js"
import { makeExpiryHeap } from "./heap.js"
import type { ReferenceIndex } from "./references.js"
import { makeReferenceIndex } from "./references.js"

export interface Session {
  // A Map, not a record: a field named `__proto__` is data like any other.
  readonly fields: Map<string, string>
  /** Epoch ms (Clock time) from which the session is gone. */
  expiresAt: number
}

// The heap may hold this many outdated entries beyond the live sessions' count before it is
// rebuilt: a rebuild costs O(live) and drops at least `live + SLACK` entries, so amortised
// O(1) per write, and a session written 10 000 times leaves a heap of a few entries.
const SLACK = 16

export interface MemorySessions {
  readonly sessions: ReadonlyMap<string, Session>
  readonly index: ReferenceIndex
  readonly heapEntries: () => number
  /** Removes every session whose time has come (a session lives while now < expiresAt). */
  readonly sweep: (now: number) => void
  /** A new session holding only its id (and, with controls, its creation time); no expiry yet. */
  readonly create: (id: string, now: number) => Session
  /** Stores `fields` under `id` (which must be free), indexed, expiring at `at`. */
  readonly store: (id: string, fields: Map<string, string>, at: number) => void
  readonly remove: (id: string) => boolean
  readonly expireAt: (id: string, session: Session, at: number) => void
  /** Writes one field, moving the id between reference sets; whether the id newly joined the value's set. */
  readonly setField: (id: string, session: Session, field: string, value: string) => boolean
  readonly deleteField: (id: string, session: Session, field: string) => void
  /** With controls: the last-seen time (the creation time is the session's since `create`). */
  readonly stamp: (session: Session, now: number) => void
  /** The session's absolute deadline (epoch ms), if it has one. */
  readonly deadline: (session: Session) => number | undefined
  /** `at`, bounded by the session's absolute deadline. */
  readonly bounded: (session: Session, at: number) => number
  /**
   * Keeps the value within its cap now that `id` joined it: deletes the least recently
   * active other holders beyond `max - 1`. The eviction, or `undefined` if none.
   */
  readonly enforceCap: (id: string, field: string, value: string, max: number) => SessionEviction | undefined
}

export const makeSessions = (references: ReadonlyArray<string>, controls: Controls): MemorySessions => {
  const referenced = new Set(references)
  const sessions = new Map<string, Session>()
  const index = makeReferenceIndex()
  const heap = makeExpiryHeap()

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
  }
  const remove = (id: string): boolean => {
    const session = sessions.get(id)
    if (session === undefined) return false
    forEachReference(session, (field, value) => index.remove(field, value, id))
    sessions.delete(id)
    return true
  }
  const deadline = (session: Session) => absoluteDeadline(controls, storedTime(session.fields.get(CREATED_AT_FIELD)))
  const lastSeen = (session: Session) =>
    storedTime(session.fields.get(LAST_SEEN_FIELD)) ?? storedTime(session.fields.get(CREATED_AT_FIELD)) ?? 0

  return {
    sessions,
    index,
    heapEntries: heap.size,
    sweep: (now) => {
      for (let due = heap.peek(); due !== undefined && due.at <= now; due = heap.peek()) {
        heap.pop()
        if (sessions.get(due.id)?.expiresAt === due.at) remove(due.id)
      }
      if (heap.size() > 2 * sessions.size + SLACK) heap.rebuild(Array.from(sessions, ([id, session]) => ({ at: session.expiresAt, id })))
    },
    create: (id, now) => {
      const session: Session = { fields: new Map([[ID_FIELD, id]]), expiresAt: now }
      if (controls.on) session.fields.set(CREATED_AT_FIELD, String(now))
      sessions.set(id, session)
      return session
    },
    store: (id, fields, at) => {
      const session: Session = { fields, expiresAt: at }
      sessions.set(id, session)
      forEachReference(session, (field, value) => index.add(field, value, id))
      expireAt(id, session, at)
    },
    remove,
    expireAt,
    setField: (id, session, field, value) => {
      const old = session.fields.get(field)
      session.fields.set(field, value)
      if (old === value || !referenced.has(field)) return false
      if (old !== undefined) index.remove(field, old, id)
      index.add(field, value, id)
      return true
    },
    deleteField: (id, session, field) => {
      const old = session.fields.get(field)
      if (old === undefined) return
      if (referenced.has(field)) index.remove(field, old, id)
      session.fields.delete(field)
    },
    stamp: (session, now) => {
      if (controls.on) session.fields.set(LAST_SEEN_FIELD, String(now))
    },
    deadline,
    bounded: (session, at) => {
      const end = deadline(session)
      return end === undefined ? at : Math.min(at, end)
    },
    enforceCap: (id, field, value, max) => {
      // The index is exact: every member is a live session holding the value.
      const others = index.members(field, value).flatMap((other) => {
        const session = other === id ? undefined : sessions.get(other)
        return session === undefined ? [] : [{ id: other, lastSeenAt: lastSeen(session) }]
      })
      const evicted = evictionOrder(others, max).filter(remove).length
      return evicted === 0 ? undefined : { field, value, evicted }
    }
  }
}
