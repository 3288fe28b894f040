// The soak (test/soak/core.mjs) for 5 s inside `npm test`, over the sources: 32 keep-alive
// HTTP clients on a Koa app, then the invariant checker (test/invariants.mjs;
// test/invariants.test.ts checks that it reports what it must). `npm run soak` runs the same core
// for 30 s over the built package.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Cluster, Redis } from "ioredis"
import { inject } from "vitest"
import koaRedisSessionSets from "../src/index.js"
import { formatReport, runSoak } from "./soak/core.mjs"
import { uniquePrefix } from "./utils.js"

const DURATION_MS = 5_000

const unhandled: Array<unknown> = []
const onUnhandled = (reason: unknown) => {
  unhandled.push(reason)
}
beforeAll(() => {
  process.on("unhandledRejection", onUnhandled)
})
afterAll(() => {
  process.off("unhandledRejection", onUnhandled)
})

const expectClean = (report: Awaited<ReturnType<typeof runSoak>>) => {
  console.log(formatReport(report))
  expect(report.requests).toBeGreaterThan(100)
  expect(report.errors.samples, "request errors").toEqual([])
  expect(report.errors.count).toBe(0)
  expect(report.errors.server).toEqual({})
  expect(report.check.violations, "invariant violations").toEqual([])
  expect(report.check.violationCount).toBe(0)
  // The run did exercise the invariants.
  expect(report.check.sessions).toBeGreaterThan(0)
  expect(report.check.memberships).toBeGreaterThan(0)
  expect(unhandled).toEqual([])
}

describe("soak", () => {
  it("a single redis-server: zero violations, zero errors", async () => {
    const client = new Redis(inject("redisUrl"))
    try {
      const report = await runSoak({ client, factory: koaRedisSessionSets, durationMs: DURATION_MS, prefix: uniquePrefix("soak") })
      expect(report.mode).toBe("standalone")
      expectClean(report)
    } finally {
      await client.quit()
    }
  }, 60_000)

  // README, "Redis Cluster", "Checking it: the convergence step": with nothing in flight, listByReference
  // of every reference set makes the sets exact; the checker runs after that step (runSoak does it
  // by default on a cluster) and compares expiries as absolute times (PEXPIRETIME).
  it("a 3-master Redis Cluster: zero violations after convergence, zero errors", async () => {
    const client = new Cluster(inject("redisClusterNodes"))
    await new Promise((resolve, reject) => {
      client.once("ready", resolve)
      client.once("error", reject)
    })
    try {
      const report = await runSoak({ client, factory: koaRedisSessionSets, durationMs: DURATION_MS, prefix: uniquePrefix("soak") })
      expect(report.mode).toBe("cluster")
      expect(report.converged).toBeGreaterThan(0)
      expectClean(report)
    } finally {
      await client.quit()
    }
  }, 90_000)
})
