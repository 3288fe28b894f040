// Starts and stops a real Redis Cluster (3 masters, no replicas) on loopback for tests.
// Only the redis-server processes started here are ever stopped, by their PID.
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, startRedis, type RunningRedis } from "./redisServer.js"

export interface ClusterNode {
  readonly host: string
  readonly port: number
}

export interface RunningCluster {
  readonly nodes: ReadonlyArray<ClusterNode>
  /** The redis-server processes, one per master. */
  readonly servers: ReadonlyArray<RunningRedis>
  /** The temp dir holding the nodes' cluster config files (removed by `stop`). */
  readonly dir: string
  stop(): Promise<void>
}

export const hasRedisCli = (): boolean => spawnSync("redis-cli", ["--version"], { stdio: "ignore" }).status === 0

/** Parses `REDIS_CLUSTER_NODES` ("127.0.0.1:7000,127.0.0.1:7001"). */
export const parseClusterNodes = (spec: string): Array<ClusterNode> =>
  spec
    .split(/[\s,]+/)
    .filter((s) => s !== "")
    .map((entry) => {
      const at = entry.lastIndexOf(":")
      const port = Number(entry.slice(at + 1))
      if (at <= 0 || !Number.isInteger(port)) throw new Error(`REDIS_CLUSTER_NODES: expected host:port, got ${JSON.stringify(entry)}`)
      return { host: entry.slice(0, at), port }
    })

const run = (command: string, args: ReadonlyArray<string>, timeoutMillis: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${command} ${args.join(" ")} timed out:\n${output}`))
    }, timeoutMillis)
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output}`))
    })
  })

/** `count` free loopback ports, none already in `taken` (which receives them). */
const distinctFreePorts = async (count: number, taken: Set<number>): Promise<Array<number>> => {
  const ports: Array<number> = []
  while (ports.length < count) {
    const port = await freePort()
    if (taken.has(port)) continue
    taken.add(port)
    ports.push(port)
  }
  return ports
}

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Polls `CLUSTER INFO` on every node until each says `cluster_state:ok`. */
export const waitForClusterOk = async (nodes: ReadonlyArray<ClusterNode>, timeoutMillis = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMillis
  for (;;) {
    const states = await Promise.all(
      nodes.map((node) =>
        run("redis-cli", ["-h", node.host, "-p", String(node.port), "cluster", "info"], 5_000).then(
          (info) => /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info),
          () => false
        )
      )
    )
    if (states.every(Boolean)) return
    if (Date.now() > deadline) throw new Error(`cluster on ports ${nodes.map((n) => n.port).join(",")} never reached cluster_state:ok`)
    await sleep(100)
  }
}

/**
 * Starts `masters` redis-servers with cluster mode on free loopback ports (config
 * files in a fresh temp dir, no persistence), joins them with
 * `redis-cli --cluster create`, and waits for `cluster_state:ok` on every node.
 */
export const startCluster = async (masters = 3): Promise<RunningCluster> => {
  const dir = mkdtempSync(join(tmpdir(), "krss-cluster-"))
  const servers: Array<RunningRedis> = []
  const taken = new Set<number>()
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < masters; i++) {
      // The cluster bus defaults to port + 10000, which may be taken or past 65535: pick a free one.
      const [port, busPort] = await distinctFreePorts(2, taken)
      servers.push(
        await startRedis(
          [
            "--cluster-enabled", "yes",
            "--cluster-config-file", join(dir, `nodes-${port}.conf`),
            "--cluster-node-timeout", "2000",
            "--cluster-port", String(busPort!),
            "--dir", dir
          ],
          port!
        )
      )
    }
    const nodes = servers.map((server) => ({ host: "127.0.0.1", port: server.port }))
    await run(
      "redis-cli",
      ["--cluster", "create", ...nodes.map((n) => `${n.host}:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"],
      30_000
    )
    await waitForClusterOk(nodes)
    return { nodes, servers, dir, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
