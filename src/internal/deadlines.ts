// The timeout of every Redis call of one client. All calls share one duration, so
// deadlines fall due in the order the calls started: a FIFO list and a single timer
// replace a timer per call (a `setTimeout` + `clearTimeout` pair per request).

// A callback that throws must not leave the calls after it unfailed: it is reported as
// an uncaught exception, as it would be from its own timer, and the loop goes on.
const run = (onFail: (cause: unknown) => void, cause: unknown): void => {
  try {
    onFail(cause)
  } catch (error) {
    queueMicrotask(() => {
      throw error
    })
  }
}

export interface Pending {
  readonly due: number
  /** Runs once, with the timeout's cause or the one given to `failAll`. */
  readonly onFail: (cause: unknown) => void
  settled: boolean
  next: Pending | undefined
}

export class Deadlines {
  private head: Pending | undefined = undefined
  private tail: Pending | undefined = undefined
  private timer: ReturnType<typeof setTimeout> | undefined = undefined

  /** `timeoutCause` builds what a call that ran out of time fails with. */
  constructor(
    readonly millis: number,
    private readonly timeoutCause: () => unknown = () => undefined
  ) {}

  /** Starts the clock of one call; `onFail` runs if it is still unsettled `millis` from now. */
  start(onFail: (cause: unknown) => void): Pending {
    const pending: Pending = { due: performance.now() + this.millis, onFail, settled: false, next: undefined }
    // `tail` means something only while the list is non-empty (`head` set).
    if (this.head === undefined) this.head = pending
    else this.tail!.next = pending
    this.tail = pending
    if (this.timer === undefined) this.schedule(this.millis)
    return pending
  }

  /** Settles a call: `false` when it had already failed (its reply must then be ignored). */
  settle(pending: Pending): boolean {
    if (pending.settled) return false
    pending.settled = true
    // Replies mostly arrive in the order calls were sent, so this keeps the list as short
    // as the number of calls in flight.
    this.dropSettled()
    return true
  }

  /**
   * Fails every unsettled call now, each once, with `cause` (the connection is known to
   * be down: waiting out their time would only delay the same answer). Their late
   * replies, if any, are ignored. Calls started from an `onFail` are not affected.
   */
  failAll(cause: unknown): void {
    let pending = this.head
    this.head = undefined
    this.tail = undefined
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    while (pending !== undefined) {
      const next = pending.next
      if (!pending.settled) {
        pending.settled = true
        run(pending.onFail, cause)
      }
      pending = next
    }
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
        run(pending.onFail, this.timeoutCause())
      }
    }
    if (this.head === undefined) this.tail = undefined
    // A call started from an `onFail` may have scheduled the timer already.
    else if (this.timer === undefined) this.schedule(this.head.due - now)
  }
}
