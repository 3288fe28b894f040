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

  it("failAll fails exactly the unsettled calls now, each once, with its cause; later calls time out as before", () => {
    fc.assert(
      fc.property(
        // Per call: when it starts, and when it settles (or never), in ms; failAll at `at`.
        fc.array(fc.record({ start: fc.nat(99), settle: fc.option(fc.nat(300), { nil: null }) }), { minLength: 1, maxLength: 30 }),
        fc.nat(99),
        (calls, at) => {
          vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] })
          const millis = 100
          const down = new Error("connection down")
          const deadlines = new Deadlines(millis, () => "timeout")
          const failures = new Map<number, Array<unknown>>()
          const settledInTime: Array<number> = []
          const pending = new Map<number, ReturnType<Deadlines["start"]>>()
          const events = [
            ...calls.flatMap((call, index) => [
              { at: call.start, order: 0, index, kind: "start" as const },
              ...(call.settle === null ? [] : [{ at: call.start + call.settle, order: 1, index, kind: "settle" as const }])
            ]),
            { at, order: 2, index: -1, kind: "failAll" as const }
          ].sort((a, b) => a.at - b.at || a.order - b.order || a.index - b.index)
          let now = 0
          for (const event of events) {
            vi.advanceTimersByTime(event.at - now)
            now = event.at
            if (event.kind === "failAll") deadlines.failAll(down)
            else if (event.kind === "start") {
              pending.set(event.index, deadlines.start((cause) => failures.set(event.index, [...(failures.get(event.index) ?? []), cause])))
            } else if (deadlines.settle(pending.get(event.index)!)) settledInTime.push(event.index)
          }
          vi.advanceTimersByTime(millis + 10)

          // Events at the same ms run starts, then settles, then failAll. A call started by
          // then and unsettled fails with the connection's cause (none can have timed out:
          // every deadline falls after ms 99); one started later times out as before.
          const expected = calls.map((call) => {
            const settledAt = call.settle === null ? Infinity : call.start + call.settle
            if (call.start <= at) return settledAt <= at ? "settled" : "down"
            return call.settle === null || call.settle >= millis ? "timeout" : "settled"
          })
          const outcome = calls.map((_, index) => {
            const causes = failures.get(index)
            if (causes === undefined) return settledInTime.includes(index) ? "settled" : "none"
            expect(causes).toHaveLength(1)
            expect(settledInTime).not.toContain(index)
            return causes[0] === down ? "down" : causes[0]
          })
          expect(outcome).toEqual(expected)
          expect(vi.getTimerCount()).toBe(0)
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

  it("failAll: a call started from a failure callback times out as usual, and a throwing callback does not stop the others", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] })
    const deadlines = new Deadlines(50, () => "timeout")
    const log: Array<string> = []
    deadlines.start((cause) => {
      log.push(`first ${String(cause)}`)
      deadlines.start((again) => log.push(`restarted ${String(again)}`))
    })
    deadlines.start(() => {
      throw new Error("callback bug")
    })
    deadlines.start((cause) => log.push(`third ${String(cause)}`))
    const reported: Array<() => void> = []
    const spy = vi.spyOn(globalThis, "queueMicrotask").mockImplementation((f) => void reported.push(f))
    try {
      deadlines.failAll("down")
    } finally {
      spy.mockRestore()
    }
    expect(log).toEqual(["first down", "third down"])
    vi.advanceTimersByTime(50)
    expect(log).toEqual(["first down", "third down", "restarted timeout"])
    expect(vi.getTimerCount()).toBe(0)
    // The throw is reported (rethrown from a microtask, as from a timer), not swallowed.
    expect(reported).toHaveLength(1)
    expect(reported[0]!).toThrow("callback bug")
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
