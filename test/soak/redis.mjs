// redis-server processes for `npm run soak` (plain Node, no TypeScript: the test
// harness has its own in test/redisServer.ts and test/redisCluster.ts).
// Loopback only, no persistence. Only processes started here are ever stopped, by PID.
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const INSTALL_HINT =
  "redis-server (and redis-cli) not found on PATH. Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools; macOS: brew install redis"

export const hasCommand = (command) => spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (server.address())
      server.close(() => resolve(port))
    })
  })

/** Free loopback ports, all distinct. */
const freePorts = async (count) => {
  const ports = new Set()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

const stopChild = (child) =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(undefined)
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve(undefined)
    })
    child.kill("SIGTERM")
  })

/** Starts one redis-server on `port` and resolves once it accepts connections. */
const spawnRedis = async (port, extraArgs = []) => {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes", ...extraArgs],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  // If this process dies first, stop the server it started (and only that one).
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  process.once("exit", onExit)
  let output = ""
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
  child.removeAllListeners("exit")
  child.stdout.resume()
  return {
    port,
    pid: child.pid,
    stop: async () => {
      process.off("exit", onExit)
      await stopChild(child)
    }
  }
}

/** A single redis-server on a free loopback port. */
export const startRedis = async () => {
  if (!hasCommand("redis-server")) throw new Error(INSTALL_HINT)
  const [port] = await freePorts(1)
  const server = await spawnRedis(port)
  return { url: `redis://127.0.0.1:${port}`, pids: [server.pid], stop: server.stop }
}

const run = (command, args) => {
  const result = spawnSync(command, args, { encoding: "utf8", timeout: 30_000 })
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed:\n${result.stdout}${result.stderr}`)
  return result.stdout
}

/** A Redis Cluster of `masters` masters (no replicas) on free loopback ports; resolves once every node says cluster_state:ok. */
export const startCluster = async (masters = 3) => {
  if (!hasCommand("redis-server") || !hasCommand("redis-cli")) throw new Error(INSTALL_HINT)
  const dir = mkdtempSync(join(tmpdir(), "krss-soak-cluster-"))
  const servers = []
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // Each node needs a client port and a cluster bus port (the default, port + 10000, may be taken).
    const ports = await freePorts(2 * masters)
    for (let i = 0; i < masters; i++) {
      const port = ports[2 * i]
      servers.push(
        await spawnRedis(port, [
          "--cluster-enabled", "yes",
          "--cluster-config-file", join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout", "2000",
          "--cluster-port", String(ports[2 * i + 1]),
          "--dir", dir
        ])
      )
    }
    const nodes = servers.map((s) => ({ host: "127.0.0.1", port: s.port }))
    run("redis-cli", ["--cluster", "create", ...nodes.map((n) => `${n.host}:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"])
    const deadline = Date.now() + 20_000
    for (;;) {
      const ok = nodes.every((n) => {
        const info = spawnSync("redis-cli", ["-h", n.host, "-p", String(n.port), "cluster", "info"], { encoding: "utf8" }).stdout ?? ""
        return info.includes("cluster_state:ok") && info.includes("cluster_slots_ok:16384")
      })
      if (ok) break
      if (Date.now() > deadline) throw new Error("the cluster never reached cluster_state:ok")
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return { nodes, pids: servers.map((s) => s.pid), stop }
  } catch (error) {
    await stop()
    throw error
  }
}
