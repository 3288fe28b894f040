// The soak (test/soak/core.mjs) for 5 s inside `npm test`, over the sources: 32 keep-alive
// HTTP clients on a Koa app, then the invariant checker. `npm run soak` runs the same core
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

describe("the checker", () => {
  // Each broken state the checker must report, planted directly in Redis.
  const plant = async (client: Redis | Cluster, prefix: string) => {
    // v3.0.0's layout, spelled out here rather than taken from the library.
    const h = (id: string) => `${prefix}:{${id}}`
    const s = (field: string, value: string) => `${prefix}:${field}:{${value}}`
    // ttl null: no TTL at all.
    const hash = async (id: string, fields: Record<string, string>, ttl: number | null = 600_000) => {
      await client.hset(h(id), { id, ...fields })
      if (ttl !== null) await client.pexpire(h(id), ttl)
    }
    const set = async (key: string, ids: Array<string>, ttl: number | null = 900_000) => {
      await client.sadd(key, ...ids)
      if (ttl !== null) await client.pexpire(key, ttl)
    }
    // Correct: a session in its sets, and an id of a session that no longer exists (allowed).
    await hash("goodgoodgoodgood01", { user_id: "u1", org_id: "o1" })
    await set(s("user_id", "u1"), ["goodgoodgoodgood01", "expiredexpired0001"])
    await set(s("org_id", "o1"), ["goodgoodgoodgood01"])
    // session-missing-from-set: holds u2, the set of u2 does not exist.
    await hash("missingmissing0001", { user_id: "u2" })
    // member-holds-other-value: in the set of u3 while holding u4 (and in u4's, correctly).
    await hash("othervalueother001", { user_id: "u4" })
    await set(s("user_id", "u3"), ["othervalueother001"])
    await set(s("user_id", "u4"), ["othervalueother001"])
    // member-holds-other-value: in the set of o5 without holding any org.
    await hash("noorgnoorgnoorg001", {})
    await set(s("org_id", "o5"), ["noorgnoorgnoorg001"])
    // set-expires-before-member
    await hash("longlivedlonglived", { user_id: "u6" }, 3_600_000)
    await set(s("user_id", "u6"), ["longlivedlonglived"], 60_000)
    // set-without-ttl
    await hash("persistentsetmembr", { user_id: "u7" })
    await set(s("user_id", "u7"), ["persistentsetmembr"], null)
    // session-without-ttl
    await hash("nottlnottlnottl001", {}, null)
    // session-id-mismatch
    await client.hset(h("wrongidwrongid0001"), { id: "somebodyelse00001", user_id: "u1" })
    await client.pexpire(h("wrongidwrongid0001"), 600_000)
    await client.sadd(s("user_id", "u1"), "wrongidwrongid0001")
    // unexpected-type
    await client.set(h("astringastring0001"), "x", "PX", 600_000)
    // unexpected-key: a session hash in the pre-3.0.0 layout, without hash-tag braces.
    await client.hset(`${prefix}:bracelessbraceless`, { id: "bracelessbraceless" })
    await client.pexpire(`${prefix}:bracelessbraceless`, 600_000)
    if (client instanceof Cluster) {
      // What a cluster revoke leaves for its grace period, correct: a revoking set whose
      // members are gone or moved away, the tombstone of a revoked id, a session's left record.
      await set(`${s("user_id", "u8")}:revoking`, ["expiredexpired0002", "goodgoodgoodgood01"], 30_000)
      await client.set(`${h("expiredexpired0002")}:revoked`, "1", "PX", 30_000)
      await client.hset(`${h("goodgoodgoodgood01")}:left`, "user_id:u8", String(Date.now()))
      await client.pexpireat(`${h("goodgoodgoodgood01")}:left`, await client.pexpiretime(h("goodgoodgoodgood01")))
      // revoked-session-alive: a live session holding u1 in u1's revoking set; a tombstone next to a live session.
      await set(`${s("user_id", "u1")}:revoking`, ["wrongidwrongid0001"], 30_000)
      await client.set(`${h("missingmissing0001")}:revoked`, "1", "PX", 30_000)
      // revoking-set-ttl, tombstone-ttl: longer than the grace period.
      await set(`${s("org_id", "o9")}:revoking`, ["expiredexpired0003"], 600_000)
      await client.set(`${h("expiredexpired0003")}:revoked`, "1", "PX", 600_000)
      // left-record-without-session, left-record-expiry
      await client.hset(`${h("goneleftgoneleft01")}:left`, "user_id:u1", "1")
      await client.pexpire(`${h("goneleftgoneleft01")}:left`, 600_000)
      await client.hset(`${h("othervalueother001")}:left`, "user_id:u3", "1")
      await client.pexpire(`${h("othervalueother001")}:left`, 30_000)
    } else {
      // unexpected-key, revoking-set-left: none of these belongs on a single server.
      await client.set(`${h("expiredexpired0002")}:revoked`, "1", "PX", 30_000)
      await set(`${s("user_id", "u8")}:revoking`, ["expiredexpired0002"], 30_000)
    }
  }

  const expectFindings = async (client: Redis | Cluster) => {
    const { checkInvariants, scanPrefix } = await import("./soak/core.mjs")
    const prefix = uniquePrefix("checker")
    try {
      await plant(client, prefix)
      const report = await checkInvariants({ client, prefix })
      const found = report.violations.map((v) => `${v.kind} ${v.id ?? v.key.slice(prefix.length + 1)}`).sort()
      const extra =
        client instanceof Cluster
          ? [
              "revoked-session-alive wrongidwrongid0001",
              "revoked-session-alive missingmissing0001",
              "revoking-set-ttl org_id:{o9}:revoking",
              "tombstone-ttl expiredexpired0003",
              "left-record-without-session goneleftgoneleft01",
              "left-record-expiry othervalueother001"
            ]
          : ["unexpected-key {expiredexpired0002}:revoked", "revoking-set-left user_id:{u8}:revoking"]
      expect(found).toEqual(
        [
          ...extra,
          "member-holds-other-value noorgnoorgnoorg001",
          "member-holds-other-value othervalueother001",
          "session-id-mismatch wrongidwrongid0001",
          "session-missing-from-set missingmissing0001",
          "session-without-ttl nottlnottlnottl001",
          "set-expires-before-member longlivedlonglived",
          "set-without-ttl user_id:{u7}",
          "unexpected-key bracelessbraceless",
          "unexpected-type astringastring0001"
        ].sort()
      )
      expect(report.staleMembers).toBe(1)
      expect(report.sessions).toBe(8)
      expect(report.sets).toBe(7)
    } finally {
      for (const key of await scanPrefix(client, prefix)) await client.del(key)
    }
  }

  it("reports every kind of violation on a single server", async () => {
    const client = new Redis(inject("redisUrl"))
    try {
      await expectFindings(client)
    } finally {
      await client.quit()
    }
  })

  it("reports every kind of violation on a cluster", async () => {
    const client = new Cluster(inject("redisClusterNodes"))
    try {
      await expectFindings(client)
    } finally {
      await client.quit()
    }
  })
})
