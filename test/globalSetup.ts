import { rmSync } from "node:fs"
import type { TestProject } from "vitest/node"
import {
  hasCommand,
  INSTALL_HINT,
  startCluster,
  startRedis,
  type ClusterNode,
  type RunningCluster,
  type RunningRedis
} from "../scripts/redis-server.mjs"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    /** Start-up nodes of a 3-master Redis Cluster (REDIS_CLUSTER_NODES="host:port,…" to use your own). */
    redisClusterNodes: Array<ClusterNode>
  }
}

let server: RunningRedis | undefined
let cluster: RunningCluster | undefined

// When vitest is killed by a signal the "exit" hooks below never run: stop our servers
// (only ours, by PID), then die of the same signal.
const ourPids = (): Array<number> =>
  [server?.process, ...(cluster?.servers.map((s) => s.process) ?? [])].flatMap((child) =>
    child?.pid !== undefined && child.exitCode === null ? [child.pid] : []
  )
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    for (const pid of ourPids()) process.kill(pid, "SIGKILL")
    process.kill(process.pid, signal)
  })
}

export async function setup(project: TestProject) {
  // The cluster starts alongside the single server (it takes ~2.5 s, mostly `--cluster create`).
  const clusterReady = setupCluster(project)
  try {
    await setupServer(project)
  } finally {
    await clusterReady
  }
}

/** Parses `REDIS_CLUSTER_NODES` ("127.0.0.1:7000,127.0.0.1:7001"). */
const parseClusterNodes = (spec: string): Array<ClusterNode> =>
  spec
    .split(/[\s,]+/)
    .filter((s) => s !== "")
    .map((entry) => {
      const at = entry.lastIndexOf(":")
      const port = Number(entry.slice(at + 1))
      if (at <= 0 || !Number.isInteger(port)) throw new Error(`REDIS_CLUSTER_NODES: expected host:port, got ${JSON.stringify(entry)}`)
      return { host: entry.slice(0, at), port }
    })

async function setupCluster(project: TestProject) {
  const fromUser = process.env["REDIS_CLUSTER_NODES"]
  if (fromUser) {
    project.provide("redisClusterNodes", parseClusterNodes(fromUser))
    return
  }
  if (!hasCommand("redis-server") || !hasCommand("redis-cli")) throw new Error(INSTALL_HINT)
  cluster = await startCluster(3)
  const { dir } = cluster
  // Fallback if vitest dies before teardown (the servers themselves die with this process).
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }))
  project.provide("redisClusterNodes", cluster.nodes.map((n) => ({ host: n.host, port: n.port })))
}

async function setupServer(project: TestProject) {
  const fromUser = process.env["REDIS_URL"]
  if (fromUser) {
    project.provide("redisUrl", fromUser)
    return
  }
  if (!hasCommand("redis-server")) throw new Error(INSTALL_HINT)
  server = await startRedis()
  project.provide("redisUrl", server.url)
}

export async function teardown() {
  await Promise.all([server?.stop(), cluster?.stop()])
}
