// The memory store's reference index: (field, value) → the ids of the live sessions
// holding it. Exact, since every change of a referenced field goes through the store.
//
// Paging (`listSessions`): each membership gets a sequence number from one counter when
// it joins, so a set's insertion order is its sequence order, and a page's cursor is the
// number of the last member it returned. The next page holds the members numbered above
// it. A member present for the whole listing keeps its number, so it falls in exactly one
// page's range: never skipped, never repeated. A member that joins meanwhile has a higher
// number than every other (it may be listed, once); one that leaves is not listed after.
// Resuming from the cursor costs nothing when the page before was the set's last one
// (a live Map iterator is kept per set), else a skip over the members numbered below.

interface Members {
  /** id → sequence number; a Map keeps insertion (so sequence) order. */
  readonly ids: Map<string, number>
  /** Where the last page of this set stopped: its cursor and the iterator standing there. */
  resume: { readonly after: number; readonly iterator: Iterator<[string, number]> } | undefined
}

export interface ReferenceIndex {
  readonly add: (field: string, value: string, id: string) => void
  readonly remove: (field: string, value: string, id: string) => void
  /** The ids holding the value (a copy). */
  readonly members: (field: string, value: string) => Array<string>
  /** Up to `limit` ids numbered above `after`, and the cursor of the next page (0: none). */
  readonly page: (field: string, value: string, after: number, limit: number) => { readonly ids: Array<string>; readonly next: number }
  /** Non-empty sets (empty ones are removed). */
  readonly size: () => number
}

export const makeReferenceIndex = (): ReferenceIndex => {
  // Keyed `${field}\0${value}`: field names cannot hold control characters, so the first NUL splits the key.
  const sets = new Map<string, Members>()
  let sequence = 0
  return {
    add: (field, value, id) => {
      const key = `${field}\0${value}`
      let set = sets.get(key)
      if (set === undefined) {
        set = { ids: new Map(), resume: undefined }
        sets.set(key, set)
      }
      // A member keeps its number (and its place) while it stays.
      if (!set.ids.has(id)) set.ids.set(id, ++sequence)
    },
    remove: (field, value, id) => {
      const key = `${field}\0${value}`
      const set = sets.get(key)
      if (set !== undefined && set.ids.delete(id) && set.ids.size === 0) sets.delete(key)
    },
    members: (field, value) => Array.from(sets.get(`${field}\0${value}`)?.ids.keys() ?? []),
    page: (field, value, after, limit) => {
      const set = sets.get(`${field}\0${value}`)
      if (set === undefined) return { ids: [], next: 0 }
      // A Map iterator stays valid while the Map changes: it skips deleted entries and reaches added ones.
      const iterator = after > 0 && set.resume?.after === after ? set.resume.iterator : set.ids.entries()
      set.resume = undefined
      const ids: Array<string> = []
      let last = after
      while (ids.length < limit) {
        const step = iterator.next()
        if (step.done === true) return { ids, next: 0 }
        const [id, number] = step.value
        if (number <= after) continue
        ids.push(id)
        last = number
      }
      set.resume = { after: last, iterator }
      return { ids, next: last }
    },
    size: () => sets.size
  }
}
