// Starts and stops real redis-server processes for tests and benchmarks.
// Only processes started here are ever stopped, by their PID.
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { createServer } from "node:net"

export const INSTALL_HINT =
  "redis-server was not found on PATH. Install it:\n" +
  "  Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools\n" +
  "  macOS:         brew install redis\n" +
  "or point the tests at a running server with REDIS_URL=redis://127.0.0.1:6379"

export const hasRedisServer = (): boolean => spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export interface RunningRedis {
  readonly port: number
  readonly url: string
  readonly process: ChildProcess
  stop(): Promise<void>
}

/** Starts `redis-server` on a free loopback port, without persistence, and waits until it accepts connections. */
export const startRedis = async (extraArgs: ReadonlyArray<string> = [], fixedPort?: number): Promise<RunningRedis> => {
  const port = fixedPort ?? (await freePort())
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes", ...extraArgs],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  let output = ""
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server on port ${port} did not start:\n${output}`)), 10_000)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited with ${code}:\n${output}`))
    })
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  })
  child.removeAllListeners("exit")
  child.stdout!.resume()
  const stop = () => stopProcess(child)
  return { port, url: `redis://127.0.0.1:${port}`, process: child, stop }
}

export const stopProcess = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })
