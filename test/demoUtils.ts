// Starting the demo (examples/demo) as a real child process for the demo tests: built
// first when dist/ is stale (the demo runs on dist/, as an app would), started on a
// free port (--port 0, the URL read from what it prints), stopped by PID only.
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"

export const ROOT = fileURLToPath(new URL("..", import.meta.url))

/** Builds dist/ when it is missing or older than src/ (the script `npm run demo` runs first). */
export const buildDemo = (): void => {
  const result = spawnSync(process.execPath, ["examples/demo/build-if-needed.mjs"], { cwd: ROOT, encoding: "utf8" })
  if (result.status !== 0) throw new Error(`building dist/ for the demo failed:\n${result.stdout}${result.stderr}`)
}

export interface RunningDemo {
  readonly child: ChildProcess
  /** "http://127.0.0.1:<port>" (no trailing slash). */
  readonly url: string
  /** Everything it printed so far, stdout and stderr. */
  output(): string
  /** Resolves with the exit code (or the signal) once the child is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Sends `signal` to the child (to its process group when it was started `detached`). */
  signal(signal: NodeJS.Signals): void
}

/**
 * Starts `command args` in the repository with `env` (REDIS_URL removed unless given)
 * and waits for the printed URL. `detached`: the child leads a process group of its own,
 * so a signal can reach the group, as Ctrl-C does in a terminal (`npm run` runs the demo
 * under a shell).
 */
export const startDemo = async (
  command: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {},
  { detached = false, timeoutMillis = 20_000 } = {}
): Promise<RunningDemo> => {
  const { REDIS_URL: _ignored, ...inherited } = process.env
  const child = spawn(command, args, { cwd: ROOT, env: { ...inherited, ...env }, detached, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )
  const signal = (name: NodeJS.Signals) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(detached ? -child.pid : child.pid, name)
    } catch {
      // Already gone.
    }
  }
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      signal("SIGKILL")
      reject(new Error(`the demo printed no URL within ${timeoutMillis} ms:\n${output}`))
    }, timeoutMillis)
    const check = () => {
      const found = /demo: (http:\/\/127\.0\.0\.1:\d+)\//.exec(output)
      if (found) {
        clearTimeout(timer)
        resolve(found[1]!)
      }
    }
    child.stdout!.on("data", check)
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`the demo exited before it printed its URL:\n${output}`))
    })
  })
  return { child, url, output: () => output, exited, signal }
}

/** Stops a demo that is still running, harder if it does not stop (for afterAll hooks). */
export const stopDemo = async (demo: RunningDemo | undefined): Promise<void> => {
  if (demo === undefined || demo.child.exitCode !== null || demo.child.signalCode !== null) return
  demo.signal("SIGTERM")
  const timer = setTimeout(() => demo.signal("SIGKILL"), 5_000)
  await demo.exited
  clearTimeout(timer)
}
