// Real redis-server processes for the tests, `npm run soak` and `npm run bench`: one
// module (plain JavaScript with JSDoc types, so Node scripts and the TypeScript test
// harness share it). Loopback only, no persistence. Only processes started here are
// ever stopped, by their PID.
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const INSTALL_HINT =
  "redis-server (and redis-cli) not found on PATH. Install them:\n" +
  "  Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools\n" +
  "  macOS:         brew install redis\n" +
  "or point the tests at a running server with REDIS_URL=redis://127.0.0.1:6379"

/** Whether `command --version` runs. @param {string} command */
export const hasCommand = (command) => spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0

/** A free TCP port on 127.0.0.1. @returns {Promise<number>} */
export const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (server.address())
      server.close(() => resolve(port))
    })
  })

/**
 * `count` free loopback ports, all distinct and none in `taken` (which receives them).
 * @param {number} count
 * @param {Set<number>} [taken]
 * @returns {Promise<Array<number>>}
 */
export const freePorts = async (count, taken = new Set()) => {
  /** @type {Array<number>} */
  const ports = []
  while (ports.length < count) {
    const port = await freePort()
    if (taken.has(port)) continue
    taken.add(port)
    ports.push(port)
  }
  return ports
}

/**
 * Stops a child process: SIGTERM, then SIGKILL after 5 s.
 * @param {import("node:child_process").ChildProcess} child
 * @returns {Promise<void>}
 */
export const stopProcess = (child) =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

/**
 * @typedef {object} RunningRedis
 * @property {number} port
 * @property {string} url
 * @property {import("node:child_process").ChildProcess} process
 * @property {number | undefined} pid
 * @property {() => Promise<void>} stop
 */

/**
 * Starts `redis-server` on a free (or the given) loopback port, without persistence,
 * and resolves once it accepts connections. If this process exits first, the server
 * is killed with it.
 * @param {{ readonly args?: ReadonlyArray<string>, readonly port?: number }} [options]
 * @returns {Promise<RunningRedis>}
 */
export const startRedis = async ({ args = [], port: fixedPort } = {}) => {
  if (!hasCommand("redis-server")) throw new Error(INSTALL_HINT)
  const port = fixedPort ?? (await freePort())
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes", ...args],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  process.once("exit", onExit)
  let output = ""
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server on port ${port} did not start:\n${output}`)), 10_000)
      child.once("error", (error) => {
        clearTimeout(timer)
        reject(error)
      })
      child.once("exit", (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited with ${code}:\n${output}`))
      })
      child.stdout.on("data", (chunk) => {
        output += chunk
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer)
          resolve(undefined)
        }
      })
      child.stderr.on("data", (chunk) => (output += chunk))
    })
  } catch (error) {
    process.off("exit", onExit)
    await stopProcess(child)
    throw error
  }
  child.removeAllListeners("exit")
  // Keep draining its output (a full pipe would block it); drop what was kept for errors.
  child.stdout.removeAllListeners("data")
  child.stderr.removeAllListeners("data")
  child.stdout.resume()
  child.stderr.resume()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    process: child,
    pid: child.pid,
    stop: async () => {
      process.off("exit", onExit)
      await stopProcess(child)
    }
  }
}

/** The version `redis-server --version` reports, e.g. "7.0.15". */
export const redisServerVersion = () =>
  spawnSync("redis-server", ["--version"], { encoding: "utf8" }).stdout?.match(/v=(\S+)/)?.[1] ?? "unknown"

/** @typedef {{ readonly host: string, readonly port: number }} ClusterNode */

/**
 * @typedef {object} RunningCluster
 * @property {ReadonlyArray<ClusterNode>} nodes
 * @property {ReadonlyArray<RunningRedis>} servers one per master
 * @property {string} dir the temp dir holding the nodes' config files (removed by `stop`)
 * @property {() => Promise<void>} stop
 */

/**
 * Runs a command to completion; resolves to its output, rejects on failure or timeout.
 * @param {string} command
 * @param {ReadonlyArray<string>} args
 * @param {number} timeoutMillis
 * @returns {Promise<string>}
 */
const run = (command, args, timeoutMillis) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${command} ${args.join(" ")} timed out:\n${output}`))
    }, timeoutMillis)
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
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

/**
 * Polls `CLUSTER INFO` on every node until each says `cluster_state:ok` with all slots served.
 * @param {ReadonlyArray<ClusterNode>} nodes
 * @param {number} [timeoutMillis]
 */
export const waitForClusterOk = async (nodes, timeoutMillis = 20_000) => {
  const deadline = Date.now() + timeoutMillis
  for (;;) {
    const states = await Promise.all(
      nodes.map((node) =>
        run("redis-cli", ["-h", node.host, "-p", String(node.port), "cluster", "info"], 5_000).then(
          (info) => info.includes("cluster_state:ok") && info.includes("cluster_slots_ok:16384"),
          () => false
        )
      )
    )
    if (states.every(Boolean)) return
    if (Date.now() > deadline) throw new Error(`cluster on ports ${nodes.map((n) => n.port).join(",")} never reached cluster_state:ok`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Starts `masters` cluster-mode redis-servers on free loopback ports (config files in a
 * fresh temp dir, no persistence), joins them with `redis-cli --cluster create` (no
 * replicas), and waits for `cluster_state:ok` on every node.
 * @param {number} [masters]
 * @returns {Promise<RunningCluster>}
 */
export const startCluster = async (masters = 3) => {
  if (!hasCommand("redis-server") || !hasCommand("redis-cli")) throw new Error(INSTALL_HINT)
  const dir = mkdtempSync(join(tmpdir(), "krss-cluster-"))
  /** @type {Array<RunningRedis>} */
  const servers = []
  const taken = new Set()
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < masters; i++) {
      // The cluster bus defaults to port + 10000, which may be taken or past 65535: pick a free one.
      const [port, busPort] = await freePorts(2, taken)
      const args = ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${port}.conf`), "--cluster-node-timeout", "2000"]
      servers.push(await startRedis({ args: [...args, "--cluster-port", String(busPort), "--dir", dir], port }))
    }
    const nodes = servers.map((server) => ({ host: "127.0.0.1", port: server.port }))
    const addresses = nodes.map((n) => `${n.host}:${n.port}`)
    await run("redis-cli", ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"], 30_000)
    await waitForClusterOk(nodes)
    return { nodes, servers, dir, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
