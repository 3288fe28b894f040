// The checker of test/invariants.mjs can fail: each broken state is planted directly in
// Redis with raw ioredis commands (on the single server and on the 3-master cluster),
// and the checker must report exactly the planted violations, under each of its options.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Cluster, Redis } from "ioredis"
import { checkInvariants, scanPrefix, type CheckOptions } from "./invariants.mjs"
import { redisClusterNodes, redisUrl, uniquePrefix } from "./utils.js"

const REFERENCES = ["user_id", "org_id"]

/** Each violation as `kind who`: the session's id, or else the key without the prefix. */
const findings = async (options: Omit<CheckOptions, "references"> & Partial<Pick<CheckOptions, "references">>) => {
  const report = await checkInvariants({ references: REFERENCES, ...options })
  const found = report.violations.map((v) => `${v.kind} ${v.id ?? v.key.slice(options.prefix.length + 1)}`).sort()
  return { report, found }
}

/** The same key layout as the library's (v3.0.0's), spelled out here rather than taken from it. */
const layout = (prefix: string) => ({
  h: (id: string) => `${prefix}:{${id}}`,
  s: (field: string, value: string) => `${prefix}:${field}:{${value}}`
})

/** Writes a hash (`id` included) and a set, with a TTL in ms (`null`: none at all). */
const writers = (client: Redis | Cluster, prefix: string) => {
  const { h } = layout(prefix)
  return {
    hash: async (id: string, fields: Record<string, string>, ttl: number | null = 600_000) => {
      await client.hset(h(id), { id, ...fields })
      if (ttl !== null) await client.pexpire(h(id), ttl)
    },
    set: async (key: string, ids: Array<string>, ttl: number | null = 900_000) => {
      await client.sadd(key, ...ids)
      if (ttl !== null) await client.pexpire(key, ttl)
    }
  }
}

// Each broken state the checker must report, next to correct ones it must not.
const plant = async (client: Redis | Cluster, prefix: string) => {
  const { h, s } = layout(prefix)
  const { hash, set } = writers(client, prefix)
  // Correct: a session in its sets, and an id of a session that no longer exists (allowed by default).
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
  // set-expires-before-member: the set's TTL is shorter than its member's.
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
  // unexpected-type: a session key that is a string, a reference key that is a string.
  await client.set(h("astringastring0001"), "x", "PX", 600_000)
  await client.set(s("org_id", "o10"), "x", "PX", 600_000)
  // unexpected-key: a session hash in the pre-3.0.0 layout (no hash-tag braces), a set of a
  // field that is not referenced, a session key whose id breaks the id rule.
  await client.hset(`${prefix}:bracelessbraceless`, { id: "bracelessbraceless" })
  await client.pexpire(`${prefix}:bracelessbraceless`, 600_000)
  await set(s("name", "n1"), ["goodgoodgoodgood01"])
  await client.hset(h("short"), { id: "short" })
  await client.pexpire(h("short"), 600_000)
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
    // revoking-set-ttl, tombstone-ttl: longer than the grace period, or none at all.
    await set(`${s("org_id", "o9")}:revoking`, ["expiredexpired0003"], 600_000)
    await set(`${s("org_id", "o11")}:revoking`, ["expiredexpired0003"], null)
    await client.set(`${h("expiredexpired0003")}:revoked`, "1", "PX", 600_000)
    await client.set(`${h("expiredexpired0004")}:revoked`, "1")
    // left-record-without-session, left-record-expiry
    await client.hset(`${h("goneleftgoneleft01")}:left`, "user_id:u1", "1")
    await client.pexpire(`${h("goneleftgoneleft01")}:left`, 600_000)
    await client.hset(`${h("othervalueother001")}:left`, "user_id:u3", "1")
    await client.pexpire(`${h("othervalueother001")}:left`, 30_000)
    // left-record-entry: an entry naming no referenced field, and one dated a minute from now.
    await client.hset(`${h("persistentsetmembr")}:left`, { "name:x": "1", "user_id:u0": String(Date.now() + 60_000) })
    await client.pexpireat(`${h("persistentsetmembr")}:left`, await client.pexpiretime(h("persistentsetmembr")))
  } else {
    // unexpected-key, revoking-set-left: none of these belongs on a single server.
    await client.set(`${h("expiredexpired0002")}:revoked`, "1", "PX", 30_000)
    await client.hset(`${h("goodgoodgoodgood01")}:left`, "user_id:u8", String(Date.now()))
    await set(`${s("user_id", "u8")}:revoking`, ["expiredexpired0002"], 30_000)
  }
}

/** What the checker must find in the planted state, with its default options. */
const expectedFindings = (cluster: boolean) =>
  [
    ...(cluster
      ? [
          "revoked-session-alive wrongidwrongid0001",
          "revoked-session-alive missingmissing0001",
          "revoking-set-ttl org_id:{o9}:revoking",
          "revoking-set-ttl org_id:{o11}:revoking",
          "tombstone-ttl expiredexpired0003",
          "tombstone-ttl expiredexpired0004",
          "left-record-without-session goneleftgoneleft01",
          "left-record-expiry othervalueother001",
          "left-record-entry persistentsetmembr",
          "left-record-entry persistentsetmembr"
        ]
      : ["unexpected-key expiredexpired0002", "unexpected-key goodgoodgoodgood01", "revoking-set-left user_id:{u8}:revoking"]),
    "member-holds-other-value noorgnoorgnoorg001",
    "member-holds-other-value othervalueother001",
    "session-id-mismatch wrongidwrongid0001",
    "session-missing-from-set missingmissing0001",
    "session-without-ttl nottlnottlnottl001",
    "set-expires-before-member longlivedlonglived",
    "set-without-ttl user_id:{u7}",
    "unexpected-key bracelessbraceless",
    "unexpected-key name:{n1}",
    "unexpected-key {short}",
    "unexpected-type astringastring0001",
    "unexpected-type org_id:{o10}"
  ].sort()

// A revoke stopped after its first step: live holders in the revoking set, not in the set.
const plantInterruptedRevoke = async (client: Redis | Cluster, prefix: string) => {
  const { s } = layout(prefix)
  const { hash, set } = writers(client, prefix)
  // Correct once revokes may be interrupted: a holder only in its value's revoking set, which
  // keeps the set's own TTL (longer than the grace period) and outlives it.
  await hash("frozenfrozenfrozen", { user_id: "u1" }, 300_000)
  await set(`${s("user_id", "u1")}:revoking`, ["frozenfrozenfrozen"], 600_000)
  // set-expires-before-member: the revoking set dies first.
  await hash("frozenshortlived01", { user_id: "u2" }, 600_000)
  await set(`${s("user_id", "u2")}:revoking`, ["frozenshortlived01"], 30_000)
  // session-missing-from-set: in neither set.
  await hash("nowherenowhere0001", { user_id: "u3" })
  // revoking-set-ttl: no TTL at all.
  await set(`${s("user_id", "u4")}:revoking`, ["expiredexpired0001"], null)
}

const withPrefix = async <A>(client: Redis | Cluster, name: string, f: (prefix: string) => Promise<A>): Promise<A> => {
  const prefix = uniquePrefix(name)
  try {
    return await f(prefix)
  } finally {
    for (const key of await scanPrefix(client, prefix)) await client.del(key)
  }
}

const suite = (name: string, connect: () => Promise<Redis | Cluster>) =>
  describe(`the invariant checker (${name})`, () => {
    let client: Redis | Cluster
    let cluster: boolean
    beforeAll(async () => {
      client = await connect()
      cluster = client instanceof Cluster
    })
    afterAll(async () => {
      await client.quit()
    })

    it("reports every planted violation, and nothing in a correct state", () =>
      withPrefix(client, "checker", async (prefix) => {
        await plant(client, prefix)
        const { report, found } = await findings({ client, prefix })
        expect(found).toEqual(expectedFindings(cluster))
        expect(report.violationCount).toBe(found.length)
        expect(report.staleMembers).toBe(1)
        expect(report.sessions).toBe(8)
        expect(report.sets).toBe(8)
        expect(report.memberships).toBe(6)
        expect(report.found.sessions.sort()).toEqual(
          [
            "goodgoodgoodgood01",
            "longlivedlonglived",
            "missingmissing0001",
            "noorgnoorgnoorg001",
            "nottlnottlnottl001",
            "othervalueother001",
            "persistentsetmembr",
            "wrongidwrongid0001"
          ].sort()
        )
        // Each message names the kind, the key and the session.
        const missing = report.violations.find((v) => v.kind === "session-missing-from-set")!
        expect(missing.message).toBe(
          `session-missing-from-set ${prefix}:user_id:{u2} (session missingmissing0001): the session holds user_id="u2" but is not in its set`
        )
        // Deleting the broken keys leaves a state with no violation at all.
        await client.del(`${prefix}:{missingmissing0001}`)
        expect((await findings({ client, prefix })).found).not.toContain("session-missing-from-set missingmissing0001")
      }))

    it("a correct state has no violation", () =>
      withPrefix(client, "checker-ok", async (prefix) => {
        const { s } = layout(prefix)
        const { hash, set } = writers(client, prefix)
        await hash("goodgoodgoodgood01", { user_id: "u1", org_id: "o1", name: "x" })
        await hash("goodgoodgoodgood02", { user_id: "u1" }, 800_000)
        await set(s("user_id", "u1"), ["goodgoodgoodgood01", "goodgoodgoodgood02", "expiredexpired0001"])
        await set(s("org_id", "o1"), ["goodgoodgoodgood01"])
        const { report, found } = await findings({ client, prefix })
        expect(found).toEqual([])
        expect(report).toMatchObject({ keys: 4, sessions: 2, sets: 2, memberships: 3, staleMembers: 1, violationCount: 0 })
      }))

    it("staleMembers: none forbids ids of gone sessions, any allows live members of another value, a predicate decides each", () =>
      withPrefix(client, "checker-stale", async (prefix) => {
        await plant(client, prefix)
        const base = expectedFindings(cluster)
        const without = (...items: Array<string>) => base.filter((f) => !items.includes(f))
        expect((await findings({ client, prefix, staleMembers: "none" })).found).toEqual([...base, "stale-member expiredexpired0001"].sort())
        expect((await findings({ client, prefix, staleMembers: "any" })).found).toEqual(
          without("member-holds-other-value noorgnoorgnoorg001", "member-holds-other-value othervalueother001")
        )
        const seen: Array<unknown> = []
        const { found } = await findings({
          client,
          prefix,
          staleMembers: (member) => {
            seen.push(member)
            return member.id === "othervalueother001"
          }
        })
        expect(found).toEqual([...without("member-holds-other-value othervalueother001"), "stale-member expiredexpired0001"].sort())
        expect(seen).toContainEqual({ field: "user_id", value: "u1", id: "expiredexpired0001", holds: undefined })
        expect(seen).toContainEqual({ field: "user_id", value: "u3", id: "othervalueother001", holds: "u4" })
        expect(seen).toContainEqual({ field: "org_id", value: "o5", id: "noorgnoorgnoorg001", holds: null })
      }))

    it("interruptedRevokes: a holder may be in its value's revoking set instead, which must outlive it", () =>
      withPrefix(client, "checker-interrupted", async (prefix) => {
        await plantInterruptedRevoke(client, prefix)
        const interrupted = await findings({ client, prefix, interruptedRevokes: true })
        expect(interrupted.found).toEqual(
          [
            "revoking-set-ttl user_id:{u4}:revoking",
            "session-missing-from-set nowherenowhere0001",
            "set-expires-before-member frozenshortlived01"
          ].sort()
        )
        expect(interrupted.report.frozenMemberships).toBe(2)
        // Where every revoke has returned, each of them is a violation.
        const { found } = await findings({ client, prefix })
        expect(found).toEqual(
          [
            ...(cluster
              ? [
                  "revoked-session-alive frozenfrozenfrozen",
                  "revoked-session-alive frozenshortlived01",
                  "revoking-set-ttl user_id:{u1}:revoking",
                  "revoking-set-ttl user_id:{u4}:revoking"
                ]
              : ["revoking-set-left user_id:{u1}:revoking", "revoking-set-left user_id:{u2}:revoking", "revoking-set-left user_id:{u4}:revoking"]),
            "session-missing-from-set frozenfrozenfrozen",
            "session-missing-from-set frozenshortlived01",
            "session-missing-from-set nowherenowhere0001"
          ].sort()
        )
      }))
  })

suite("single server", async () => new Redis(redisUrl()))

suite("cluster", async () => {
  const client = new Cluster(redisClusterNodes())
  await new Promise<void>((resolve, reject) => {
    client.once("ready", resolve)
    client.once("error", reject)
  })
  return client
})
