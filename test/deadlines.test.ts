import fc from "fast-check"
import { afterEach, describe, expect, it, vi } from "vitest"
import { Deadlines } from "../src/internal/deadlines.js"

// The shared timeout list behind every Redis call: exactly the calls still unsettled
// when their time is up time out, each once, whatever order replies arrive in.
describe("Deadlines", () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it("times out exactly the calls unsettled at their deadline, each once, in any settle order", () => {
    fc.assert(
      fc.property(
        // Per call: when it starts, and when it settles (or never, as null), in ms.
        fc.array(fc.record({ start: fc.nat(300), settle: fc.option(fc.nat(300), { nil: null }) }), { minLength: 1, maxLength: 40 }),
        (calls) => {
          vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] })
          const millis = 100
          const deadlines = new Deadlines(millis)
          const timedOut: Array<number> = []
          const settledInTime: Array<number> = []
          const events = calls
            .flatMap((call, index) => [
              { at: call.start, order: 0, index, kind: "start" as const },
              ...(call.settle === null ? [] : [{ at: call.start + call.settle, order: 1, index, kind: "settle" as const }])
            ])
            .sort((a, b) => a.at - b.at || a.order - b.order || a.index - b.index)
          const pending = new Map<number, ReturnType<Deadlines["start"]>>()
          let now = 0
          for (const event of events) {
            vi.advanceTimersByTime(event.at - now)
            now = event.at
            if (event.kind === "start") pending.set(event.index, deadlines.start(() => timedOut.push(event.index)))
            else if (deadlines.settle(pending.get(event.index)!)) settledInTime.push(event.index)
          }
          vi.advanceTimersByTime(millis + 10)

          const expectedTimeouts = calls.flatMap((call, index) => (call.settle === null || call.settle >= millis ? [index] : []))
          expect([...timedOut].sort((a, b) => a - b)).toEqual(expectedTimeouts)
          // A call settles in time or times out, never both.
          expect(settledInTime.filter((index) => timedOut.includes(index))).toEqual([])
          expect(settledInTime.length + timedOut.length).toBe(calls.length)
          vi.useRealTimers()
        }
      ),
      { numRuns: 200 }
    )
  })

  it("keeps working for calls started from a timeout callback, and leaves no timer behind", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] })
    const deadlines = new Deadlines(50)
    const log: Array<string> = []
    deadlines.start(() => {
      log.push("first")
      deadlines.start(() => log.push("second"))
    })
    vi.advanceTimersByTime(50)
    expect(log).toEqual(["first"])
    vi.advanceTimersByTime(50)
    expect(log).toEqual(["first", "second"])
    expect(vi.getTimerCount()).toBe(0)
  })

  it("does not keep the process alive: its timer is unref'd", () => {
    const deadlines = new Deadlines(60_000)
    const spy = vi.spyOn(globalThis, "setTimeout")
    const pending = deadlines.start(() => {})
    const timer = spy.mock.results[0]!.value as NodeJS.Timeout
    expect(timer.hasRef()).toBe(false)
    deadlines.settle(pending)
    clearTimeout(timer)
    spy.mockRestore()
  })
})
