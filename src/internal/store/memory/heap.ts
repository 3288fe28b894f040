// The memory store's expiry heap: a binary min-heap of "`id` expires at `at`" entries.
// Entries are never updated in place (lazy deletion): a session that gets a new expiry
// gets a new entry, and the old one is found outdated when it reaches the top.

/** "`id` expires at `at`"; outdated once the session is gone or got another expiry. */
export interface Due {
  readonly at: number
  readonly id: string
}

export interface ExpiryHeap {
  readonly size: () => number
  /** The earliest entry, or `undefined` when empty. */
  readonly peek: () => Due | undefined
  readonly push: (due: Due) => void
  /** Removes the earliest entry. */
  readonly pop: () => void
  /** Replaces the entries with `entries` (O(n)), dropping every outdated one. */
  readonly rebuild: (entries: Iterable<Due>) => void
}

export const makeExpiryHeap = (): ExpiryHeap => {
  const heap: Array<Due> = []
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
  return {
    size: () => heap.length,
    peek: () => heap[0],
    push: (due) => {
      heap.push(due)
      siftUp(heap.length - 1)
    },
    pop: () => {
      const last = heap.pop()!
      if (heap.length > 0) {
        heap[0] = last
        siftDown(0)
      }
    },
    rebuild: (entries) => {
      heap.length = 0
      for (const due of entries) heap.push(due)
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i)
    }
  }
}
