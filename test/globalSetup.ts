import { rmSync } from "node:fs"
import type { TestProject } from "vitest/node"
import { hasRedisCli, parseClusterNodes, startCluster, type ClusterNode, type RunningCluster } from "./redisCluster.js"
import { hasRedisServer, INSTALL_HINT, startRedis, type RunningRedis } from "./redisServer.js"

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

async function setupCluster(project: TestProject) {
  const fromUser = process.env["REDIS_CLUSTER_NODES"]
  if (fromUser) {
    project.provide("redisClusterNodes", parseClusterNodes(fromUser))
    return
  }
  if (!hasRedisServer() || !hasRedisCli()) throw new Error(INSTALL_HINT)
  cluster = await startCluster(3)
  const { servers, dir } = cluster
  // Fallback if vitest dies before teardown: stop only the servers we started.
  process.once("exit", () => {
    for (const { process: child } of servers) if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL")
    rmSync(dir, { recursive: true, force: true })
  })
  project.provide("redisClusterNodes", cluster.nodes.map((n) => ({ host: n.host, port: n.port })))
}

async function setupServer(project: TestProject) {
  const fromUser = process.env["REDIS_URL"]
  if (fromUser) {
    project.provide("redisUrl", fromUser)
    return
  }
  if (!hasRedisServer()) throw new Error(INSTALL_HINT)
  server = await startRedis()
  const pid = server.process.pid
  // Fallback if vitest dies before teardown: stop only the server we started.
  process.once("exit", () => {
    if (pid !== undefined && server?.process.exitCode === null) process.kill(pid, "SIGKILL")
  })
  project.provide("redisUrl", server.url)
}

export async function teardown() {
  await Promise.all([server?.stop(), cluster?.stop()])
}
