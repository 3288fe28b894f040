// The timeout of every Redis call of one client. All calls share one duration, so
// deadlines fall due in the order the calls started: a FIFO list and a single timer
// replace a timer per call (a `setTimeout` + `clearTimeout` pair per request).

export interface Pending {
  readonly due: number
  readonly onTimeout: () => void
  settled: boolean
  next: Pending | undefined
}

export class Deadlines {
  private head: Pending | undefined = undefined
  private tail: Pending | undefined = undefined
  private timer: ReturnType<typeof setTimeout> | undefined = undefined

  constructor(readonly millis: number) {}

  /** Starts the clock of one call; `onTimeout` runs if it is still unsettled `millis` from now. */
  start(onTimeout: () => void): Pending {
    const pending: Pending = { due: performance.now() + this.millis, onTimeout, settled: false, next: undefined }
    // `tail` means something only while the list is non-empty (`head` set).
    if (this.head === undefined) this.head = pending
    else this.tail!.next = pending
    this.tail = pending
    if (this.timer === undefined) this.schedule(this.millis)
    return pending
  }

  /** Settles a call: `false` when it had already timed out (its reply must then be ignored). */
  settle(pending: Pending): boolean {
    if (pending.settled) return false
    pending.settled = true
    // Replies mostly arrive in the order calls were sent, so this keeps the list as short
    // as the number of calls in flight.
    this.dropSettled()
    return true
  }

  private dropSettled(): void {
    while (this.head !== undefined && this.head.settled) this.head = this.head.next
    // Let go of the last call (and the request its callback holds) once the list is empty.
    if (this.head === undefined) this.tail = undefined
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(this.expire, Math.max(1, Math.ceil(delay)))
    // A pending call must not keep the process alive on its own (its socket does, while open).
    this.timer.unref()
  }

  private readonly expire = (): void => {
    this.timer = undefined
    const now = performance.now()
    while (this.head !== undefined && (this.head.settled || this.head.due <= now)) {
      const pending = this.head
      this.head = pending.next
      if (!pending.settled) {
        pending.settled = true
        pending.onTimeout()
      }
    }
    if (this.head === undefined) this.tail = undefined
    // A call started from an `onTimeout` may have scheduled the timer already.
    else if (this.timer === undefined) this.schedule(this.head.due - now)
  }
}
