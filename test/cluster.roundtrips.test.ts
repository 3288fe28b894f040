// How many round trips each `ctx.session` operation costs on a Redis Cluster (the
// standalone store's are in Koa.test.ts: one each). Counted on the client: every command
// the store's ioredis `Cluster` sends, grouped in round trips (commands sent together,
// before any of them is answered, are one; the next starts with the first command sent
// after a reply), each command named by its script (EVALSHA) or its name.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Cluster } from "ioredis"
import type { Command } from "ioredis"
import Koa from "koa"
import koaRedisSessionSets from "../src/index.js"
import type { SessionMiddleware } from "../src/index.js"
import { clusterAddReference } from "../src/internal/store/lua/clusterAddReference.js"
import { clusterDeleteSession } from "../src/internal/store/lua/clusterDeleteSession.js"
import { clusterReadState } from "../src/internal/store/lua/clusterReadState.js"
import { clusterWriteSession } from "../src/internal/store/lua/clusterWriteSession.js"
import { clusterRegenerateSnapshot } from "../src/internal/store/lua/regenerateSession.js"
import { Browser, routeTo, serve, type Served } from "./koaUtils.js"
import { deleteKeys, keysMatching, redisClusterNodes, uniquePrefix } from "./utils.js"

const SCRIPTS = [clusterAddReference, clusterDeleteSession, clusterReadState, clusterWriteSession, clusterRegenerateSnapshot]
const scriptNames = new Map(SCRIPTS.map((script) => [script.sha1, script.name.replace(/^cluster/, "")]))

/** What the client sent meanwhile, one array of command names per round trip. */
type Trips = Array<Array<string>>

let cluster: Cluster
let recording: Trips | undefined
let answered = true

beforeAll(async () => {
  cluster = new Cluster(redisClusterNodes())
  await new Promise<void>((resolve, reject) => {
    cluster.once("ready", resolve)
    cluster.once("error", reject)
  })
  // Every command goes through `sendCommand`: record it, and when its reply comes.
  const send = cluster.sendCommand.bind(cluster)
  cluster.sendCommand = (command: Command, ...rest: Array<never>) => {
    if (recording !== undefined) {
      const name = command.name === "evalsha" ? (scriptNames.get(String(command.args[0])) ?? "evalsha") : command.name
      if (answered || recording.length === 0) recording.push([])
      recording[recording.length - 1]!.push(name)
      answered = false
      const settle = () => void (answered = true)
      command.promise.then(settle, settle)
    }
    return send(command, ...rest)
  }
  // Cached on every master, so no EVALSHA turns into EVALSHA + EVAL.
  await Promise.all(cluster.nodes("master").flatMap((node) => SCRIPTS.map((script) => node.script("LOAD", script.source))))
})

let app: { readonly mw: SessionMiddleware; readonly served: Served; readonly prefix: string } | undefined
afterAll(async () => {
  if (app !== undefined) {
    await app.served.close()
    await app.mw.close()
    await deleteKeys(cluster, await keysMatching(cluster, `${app.prefix}:*`))
  }
  await cluster.quit()
})

let user = 0
const routes = {
  "/login": (ctx: Koa.Context) => ctx.session.set({ user_id: ++user }),
  "/get": (ctx: Koa.Context) => ctx.session.get(),
  "/fields": (ctx: Koa.Context) => ctx.session.get(["user_id"]),
  "/set-ref": (ctx: Koa.Context) => ctx.session.set({ user_id: ++user }),
  "/set-plain": (ctx: Koa.Context) => ctx.session.set({ cart: String(++user) }),
  "/touch": (ctx: Koa.Context) => ctx.session.touch(),
  "/unset-ref": (ctx: Koa.Context) => ctx.session.unset(["user_id"]),
  "/unset-plain": (ctx: Koa.Context) => ctx.session.unset(["cart"]),
  "/regenerate": (ctx: Koa.Context) => ctx.session.regenerate(),
  "/delete": (ctx: Koa.Context) => ctx.session.delete()
}

const tripsOf = async (browser: Browser, path: string): Promise<Trips> => {
  recording = []
  answered = true
  try {
    expect((await browser.request(path)).status, path).toBeLessThan(300)
    return recording
  } finally {
    recording = undefined
  }
}

describe("ctx.session on a Redis Cluster", () => {
  it("costs these round trips per operation", async () => {
    const koa = new Koa()
    koa.silent = true
    const prefix = uniquePrefix("cluster-trips")
    const mw = koaRedisSessionSets(koa, { client: cluster, prefix, references: { user_id: {} }, signed: false })
    koa.use(mw)
    koa.use(routeTo(routes, mw))
    app = { mw, served: await serve(koa), prefix }
    const b = new Browser(app.served.url)
    // The first request also reads each master's maxmemory-policy (RedisClient): not counted.
    await b.request("/login")
    await b.request("/get")

    // [path, what the session holds before it, what it sends, round trip by round trip]
    // Before issue 15 (each write: read, pre-add, write, re-assert, re-read): /set-ref 5,
    // /set-plain 5 (held user_id) or 2 (none), /touch 5 or 2, /unset-ref 4, /login 5,
    // /regenerate 8, /delete 3; reads 1.
    const expected: ReadonlyArray<readonly [string, string, Trips]> = [
      ["/get", "user_id", [["hgetall"]]],
      ["/fields", "user_id", [["hmget"]]],
      // Pre-add the new value, write, re-add to the new set ∥ leave the old one, re-read.
      ["/set-ref", "user_id", [["AddReference"], ["WriteSession"], ["AddReference", "srem"], ["ReadState"]]],
      // The first write expects no referenced value and finds user_id (its reply is the read),
      // then pre-add of the kept value, write; nothing to reconcile (it held it before and after).
      ["/set-plain", "user_id", [["WriteSession"], ["AddReference"], ["WriteSession"]]],
      ["/touch", "user_id", [["WriteSession"], ["AddReference"], ["WriteSession"]]],
      ["/unset-plain", "user_id", [["WriteSession"], ["AddReference"], ["WriteSession"]]],
      ["/unset-ref", "user_id", [["WriteSession"], ["srem"], ["ReadState"]]],
      // No referenced value held: the write alone.
      ["/set-plain", "no reference", [["WriteSession"]]],
      ["/touch", "no reference", [["WriteSession"]]],
      ["/login", "no reference", [["AddReference"], ["WriteSession"], ["AddReference"], ["ReadState"]]],
      // Snapshot, pre-add (its value, and a check of each value it left), create, then the old
      // id's delete and the new id's reconcile side by side.
      [
        "/regenerate",
        "user_id",
        [
          ["RegenerateSnapshot"],
          ["AddReference", "AddReference", "AddReference"],
          ["WriteSession"],
          ["DeleteSession", "AddReference"],
          ["srem", "ReadState"],
          ["ReadState"]
        ]
      ],
      ["/delete", "user_id", [["DeleteSession"], ["srem"], ["ReadState"]]],
      ["/login", "nothing (a new session)", [["AddReference"], ["WriteSession"], ["AddReference"], ["ReadState"]]]
    ]
    for (const [path, holding, trips] of expected) {
      expect(await tripsOf(b, path), `${path} (session holding ${holding})`).toEqual(trips)
    }
  })
})
