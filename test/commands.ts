// How many Redis commands an operation costs, measured the same way in every test.
//
// `commandsDuring(client, f)` (or `commandsDuringEffect(client, effect)`) runs the operation
// and returns, beside its result:
//   - `ran`: the calls per command that the server executed meanwhile, from INFO commandstats.
//     That is what clients sent *and* what scripts ran inside them (an `evalsha` and the
//     `hset` it ran both count). The helper's own INFO calls are left out.
//   - `total`: the sum of `ran`.
//   - `sent`, with `{ sent: true }`: every command clients sent, in order, each as its
//     arguments (MONITOR, which marks the commands a script ran "lua": those are left out),
//     so `sent.length` is the number of round trips. The helper's own commands are left out.
// Both views are server-wide: they count every connection, so a test measures while nothing
// else talks to that server (files run one at a time; see vitest.config.ts).
import { Effect } from "effect"
import type { Redis } from "ioredis"

export interface Commands {
  /** Calls per command the server ran (commands inside scripts included); commands not run are absent. */
  readonly ran: Readonly<Record<string, number>>
  /** The sum of `ran`. */
  readonly total: number
  /** With `{ sent: true }`: what clients sent, in order (not what scripts ran inside); otherwise empty. */
  readonly sent: ReadonlyArray<ReadonlyArray<string>>
}

export interface CommandsOptions {
  /** Also list what clients sent, through a MONITOR connection (default false). */
  readonly sent?: boolean
}

/** Calls per command since the server started (or its last CONFIG RESETSTAT), from INFO commandstats. */
export const commandStats = async (client: Redis): Promise<Record<string, number>> => {
  const info = await client.info("commandstats")
  const stats: Record<string, number> = {}
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[match[1]!] = Number(match[2])
  return stats
}

const isOwnInfo = (args: ReadonlyArray<string>) => args.length === 2 && args[0]!.toLowerCase() === "info" && args[1]!.toLowerCase() === "commandstats"

/** Starts counting on `client`'s server; `stop` returns what ran (and was sent) since. */
const startCounting = async (client: Redis, options: CommandsOptions) => {
  const watcher = options.sent ? await client.monitor() : undefined
  const seen: Array<ReadonlyArray<string>> = []
  watcher?.on("monitor", (_time: string, args: Array<string>, source: string) => {
    if (source !== "lua") seen.push(args)
  })
  const before = await commandStats(client)
  const stop = async (): Promise<Commands> => {
    const after = await commandStats(client)
    const ran: Record<string, number> = {}
    for (const [name, calls] of Object.entries(after)) {
      const delta = calls - (before[name] ?? 0)
      if (name !== "info" && delta > 0) ran[name] = delta
    }
    const total = Object.values(ran).reduce((sum, n) => sum + n, 0)
    if (watcher === undefined) return { ran, total, sent: [] }
    // MONITOR lists commands in the order the server ran them: once our marker shows up,
    // everything the operation sent (it has been answered) is listed before it.
    const marker = `commands-marker-${Math.random()}`
    await client.echo(marker)
    const deadline = Date.now() + 5_000
    while (!seen.some((args) => args.includes(marker))) {
      if (Date.now() > deadline) throw new Error("MONITOR never showed the marker")
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    watcher.disconnect()
    const end = seen.findIndex((args) => args.includes(marker))
    return { ran, total, sent: seen.slice(0, end).filter((args) => !isOwnInfo(args)) }
  }
  return { stop, abort: () => watcher?.disconnect() }
}

/** Runs `f` and counts the Redis commands it cost on `client`'s server. */
export const commandsDuring = async <A>(client: Redis, f: () => Promise<A>, options: CommandsOptions = {}): Promise<Commands & { readonly result: A }> => {
  const counting = await startCounting(client, options)
  let result: A
  try {
    result = await f()
  } catch (error) {
    counting.abort()
    throw error
  }
  return { result, ...(await counting.stop()) }
}

/** `commandsDuring` for an Effect: runs it (in the caller's fiber, with its services and clock) and counts. */
export const commandsDuringEffect = <A, E, R>(client: Redis, effect: Effect.Effect<A, E, R>, options: CommandsOptions = {}) =>
  Effect.acquireUseRelease(
    Effect.promise(() => startCounting(client, options)),
    (counting) => Effect.flatMap(effect, (result) => Effect.promise(async () => ({ result, ...(await counting.stop()) }))),
    (counting) => Effect.sync(() => counting.abort())
  )
