// Starts and stops the benchmark's own redis-server. Only the process started
// here is ever stopped, by its PID (child.kill). Loopback only, no persistence.
import { spawn, spawnSync } from "node:child_process"
import { createServer } from "node:net"

export const hasCommand = (command, args = ["--version"]) => spawnSync(command, args, { stdio: "ignore" }).status === 0

export const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

/** Starts redis-server on a free 127.0.0.1 port with `--save "" --appendonly no`; resolves once it accepts connections. */
export const startRedis = async () => {
  if (!hasCommand("redis-server")) {
    throw new Error("redis-server was not found on PATH (Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools)")
  }
  const port = await freePort()
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning"],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  let output = ""
  child.stdout.on("data", (chunk) => (output += chunk))
  child.stderr.on("data", (chunk) => (output += chunk))
  // Fallback if the runner dies: stop only the server started here.
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  process.once("exit", onExit)
  await waitForPing(port, child, () => output)
  const version = spawnSync("redis-server", ["--version"], { encoding: "utf8" }).stdout.match(/v=(\S+)/)?.[1] ?? "unknown"
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    version,
    stop: () =>
      new Promise((resolve) => {
        process.off("exit", onExit)
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
        child.once("exit", () => {
          clearTimeout(timer)
          resolve()
        })
        child.kill("SIGTERM")
      })
  }
}

const waitForPing = async (port, child, output) => {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}:\n${output()}`)
    const ok = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "PING"], { encoding: "utf8" }).stdout?.trim() === "PONG"
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill("SIGKILL")
  throw new Error(`redis-server on port ${port} did not start:\n${output()}`)
}
