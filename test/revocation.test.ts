// "Sign out everywhere" under attack: a stolen session that keeps moving to new ids
// (ctx.session.regenerate() in keep-alive loops) or keeps writing, while the victim's
// password reset runs deleteByReference. When the revoke returns, no session that held
// the value when it started, nor any id it moved to meanwhile, may be alive.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import Koa from "koa"
import { Cluster, Redis } from "ioredis"
import { inject } from "vitest"
import koaRedisSessionSets from "../src/index.js"
import type { SessionMiddleware } from "../src/index.js"
import { Browser, serve, type Served } from "./koaUtils.js"
import { keysMatching, redisClusterNodes, uniquePrefix } from "./utils.js"

const TRIALS = 40
/** The victim's other sessions: enough for the revoke to scan several pages. */
const VICTIM_SESSIONS = 1200

interface AttackApp {
  readonly client: Redis | Cluster
  readonly prefix: string
  readonly mw: SessionMiddleware
  readonly served: Served
}

/** The app under attack: login (regenerate + user_id), regenerate, set, touch, unset; each answers the user. */
const attackApp = async (client: Redis | Cluster, prefix: string): Promise<AttackApp> => {
  const app = new Koa()
  app.keys = ["revocation test key"]
  const mw = koaRedisSessionSets(app, { client, prefix, references: { user_id: {} } })
  app.use(mw)
  app.use(async (ctx) => {
    switch (ctx.path) {
      case "/login":
        await ctx.session.regenerate()
        await ctx.session.set({ user_id: String(ctx.query["user"]) })
        break
      case "/regenerate":
        await ctx.session.regenerate()
        break
      case "/set":
        await ctx.session.set({ seen: String(Date.now()) })
        break
      case "/touch":
        await ctx.session.touch()
        break
      case "/unset":
        await ctx.session.unset(["seen"])
        break
    }
    const { user_id = null } = await ctx.session.get(["user_id"])
    ctx.body = { user_id }
  })
  return { client, prefix, mw, served: await serve(app) }
}

/** Every live session hash under the prefix (on every master of a cluster) that holds `user_id = user`. */
const sessionsOf = async ({ client, prefix }: AttackApp, user: string): Promise<Array<string>> => {
  const hashes = (await keysMatching(client, `${prefix}:{*}`)).filter((key) => key.endsWith("}"))
  const values = await Promise.all(hashes.map((key) => client.hget(key, "user_id")))
  return hashes.filter((_, i) => values[i] === user)
}

const victimSessions = async ({ mw }: AttackApp, user: string, count: number) => {
  const ids = Array.from({ length: count }, () => mw.store.createSessionId())
  for (let i = 0; i < ids.length; i += 200) await Promise.all(ids.slice(i, i + 200).map((id) => mw.store.set(id, { user_id: user })))
}

/** Runs `paths` in loops (each its own keep-alive connection) on one stolen cookie jar until `stop()`. */
const attack = (browser: Browser, paths: ReadonlyArray<string>) => {
  let running = true
  const loops = paths.map(async (path) => {
    while (running) await browser.request(path).then((response) => response.arrayBuffer())
  })
  return async () => {
    running = false
    await Promise.all(loops)
  }
}

/**
 * Trials of the attack: the victim's sessions, the attacker's login, the loops, the revoke.
 * Returns how many trials left a session of the victim alive or the attacker signed in.
 */
const survivorsOver = async (
  target: AttackApp,
  paths: ReadonlyArray<string>,
  label: string,
  { trials, victims, withinMillis = Infinity }: { trials: number; victims: number; withinMillis?: number }
): Promise<{ survivors: number; trials: number }> => {
  const deadline = Date.now() + withinMillis
  let survivors = 0
  let run = 0
  for (; run < trials && Date.now() < deadline; run++) {
    const user = `${label}-${run}`
    await victimSessions(target, user, victims)
    const attacker = new Browser(target.served.url)
    expect((await attacker.json(`/login?user=${user}`)).body).toEqual({ user_id: user })
    const stop = attack(attacker, paths)
    // Let the loops get going, then reset the password.
    await new Promise((resolve) => setTimeout(resolve, 5))
    const revoked = await target.mw.store.deleteByReference("user_id", user)
    const alive = await sessionsOf(target, user)
    await stop()
    expect(revoked).toBeGreaterThanOrEqual(victims)
    const me = (await attacker.json<{ user_id: string | null }>("/")).body
    if (alive.length > 0 || me.user_id !== null) survivors++
  }
  return { survivors, trials: run }
}

let client: Redis
let target: AttackApp
let mw: SessionMiddleware
let served: Served
const prefix = uniquePrefix("revocation")

beforeAll(async () => {
  client = new Redis(inject("redisUrl"))
  target = await attackApp(client, prefix)
  ;({ mw, served } = target)
})

afterAll(async () => {
  await served.close()
  await mw.close()
  await client.quit()
})

describe("deleteByReference cannot be escaped (single server)", () => {
  it(`a stolen session regenerating in three keep-alive loops: 0 of ${TRIALS} trials leave it signed in`, async () => {
    const { survivors } = await survivorsOver(target, ["/regenerate", "/regenerate", "/regenerate"], "regen", { trials: TRIALS, victims: VICTIM_SESSIONS })
    expect(survivors).toBe(0)
  }, 120_000)

  it(`regenerate, set, touch and unset loops in flight: 0 of ${TRIALS} trials leave it signed in`, async () => {
    const { survivors } = await survivorsOver(target, ["/regenerate", "/set", "/touch", "/unset"], "mixed", { trials: TRIALS, victims: VICTIM_SESSIONS })
    expect(survivors).toBe(0)
  }, 120_000)

  it("a revoke interrupted after its first step: its sessions cannot change, and running it again finishes them", async () => {
    const [a, b] = [mw.store.createSessionId(), mw.store.createSessionId()]
    await mw.store.set(a, { user_id: "halfway", name: "a" })
    await mw.store.set(b, { user_id: "halfway", name: "b" })
    // What the first step leaves behind when the process dies right after it.
    await client.rename(mw.store.getReferenceKey("user_id", "halfway"), `${prefix}:user_id:{halfway}:revoking`)

    expect(await mw.store.touch(a)).toBe(false)
    expect(await mw.store.unset(a, ["name"])).toBe(false)
    expect(await mw.store.regenerate(a)).toBeUndefined()
    await expect(mw.store.set(a, { user_id: "elsewhere" })).rejects.toMatchObject({ _tag: "InvalidSessionId" })
    expect(await client.hgetall(mw.store.getSessionKey(a))).toEqual({ id: a, user_id: "halfway", name: "a" })
    // A fresh login for the same value is not held up by it.
    const fresh = mw.store.createSessionId()
    await mw.store.set(fresh, { user_id: "halfway" })
    expect(await mw.store.touch(fresh)).toBe(true)

    expect(await mw.store.deleteByReference("user_id", "halfway")).toBe(3)
    expect(await client.exists(mw.store.getSessionKey(a), mw.store.getSessionKey(b), mw.store.getSessionKey(fresh))).toBe(0)
    expect(await client.exists(`${prefix}:user_id:{halfway}:revoking`, mw.store.getReferenceKey("user_id", "halfway"))).toBe(0)
  })

  it("a fresh login after the revoke has returned is not affected", async () => {
    await victimSessions(target, "fresh", VICTIM_SESSIONS)
    expect(await mw.store.deleteByReference("user_id", "fresh")).toBe(VICTIM_SESSIONS)
    const browser = new Browser(served.url)
    expect((await browser.json("/login?user=fresh")).body).toEqual({ user_id: "fresh" })
    expect((await browser.json("/set")).body).toEqual({ user_id: "fresh" })
    expect(await mw.store.listByReference("user_id", "fresh")).toEqual([browser.sessionId])
    // Nothing is left of the revoke itself.
    expect(await client.exists(`${prefix}:user_id:{fresh}:revoking`)).toBe(0)
  })
})

// The same attack on a 3-master Redis Cluster, where no script sees a session hash and a
// reference set together (README, "Redis Cluster"): the revoke freezes the set on the value's
// slot, then checks each member on its own slot, and regenerate's pre-add refuses an old id
// that is being revoked.
describe("deleteByReference cannot be escaped (Redis Cluster)", () => {
  /** 40 trials, or as many as fit in about 15 s (at least 8). */
  const CLUSTER_TRIALS = 40
  /** Several SSCAN pages (500) of 64-concurrent per-id scripts. */
  const CLUSTER_VICTIMS = 600
  let cluster: Cluster
  let onCluster: AttackApp

  beforeAll(async () => {
    cluster = new Cluster(redisClusterNodes())
    await new Promise((resolve, reject) => {
      cluster.once("ready", resolve)
      cluster.once("error", reject)
    })
    onCluster = await attackApp(cluster, uniquePrefix("revocation-cluster"))
  })

  afterAll(async () => {
    await onCluster.served.close()
    await onCluster.mw.close()
    await cluster.quit()
  })

  const clusterSurvivors = async (paths: ReadonlyArray<string>, label: string): Promise<number> => {
    const { survivors, trials } = await survivorsOver(onCluster, paths, label, {
      trials: CLUSTER_TRIALS,
      victims: CLUSTER_VICTIMS,
      withinMillis: 15_000
    })
    console.log(`cluster ${label}: ${survivors} of ${trials} trials survived`)
    expect(trials).toBeGreaterThanOrEqual(8)
    return survivors
  }

  it("a stolen session regenerating in three keep-alive loops: no trial leaves it signed in", async () => {
    expect(await clusterSurvivors(["/regenerate", "/regenerate", "/regenerate"], "regen")).toBe(0)
  }, 120_000)

  it("regenerate, set, touch and unset loops in flight: no trial leaves it signed in", async () => {
    expect(await clusterSurvivors(["/regenerate", "/set", "/touch", "/unset"], "mixed")).toBe(0)
  }, 120_000)
})
