// The `maxmemory-policy` check: read once per client, at its first "ready", and one
// warning unless the policy is `noeviction` (evicted reference sets make revoke-all miss
// sessions). Never fails and never delays a call.
import { Effect, Runtime } from "effect"
import { Cluster, ReplyError } from "ioredis"
import type { Redis } from "ioredis"
import { RedisError } from "../../SessionError.js"

const EVICTION_WARNING =
  "Redis may evict this library's reference sets (they carry a TTL, so volatile-* policies evict them too) while their " +
  "sessions live on, and revoke-all (deleteByReference) then misses those sessions. Set maxmemory-policy noeviction; " +
  'see the README section "Redis configuration" (https://github.com/koajs/redis-session-sets#redis-configuration).'

type PolicyReading =
  | { readonly node: string; readonly policy: string }
  | { readonly node: string; readonly refused: string }
  | { readonly node: string; readonly failed: true }

const evictionWatched = new WeakSet<Redis | Cluster>()

const nodeName = (node: Redis): string => {
  const options = node.options as { readonly host?: unknown; readonly port?: unknown; readonly path?: unknown }
  if (typeof options.path === "string" && options.path !== "") return options.path
  return `${typeof options.host === "string" ? options.host : "localhost"}:${typeof options.port === "number" ? options.port : 6379}`
}

// `CONFIG GET` answers a flat array under the "legacy" reply mapping, a map otherwise.
const policyOf = (reply: unknown): string | undefined => {
  let value: unknown
  if (Array.isArray(reply)) value = reply[reply.findIndex((item) => String(item) === "maxmemory-policy") + 1]
  else if (reply instanceof Map) value = reply.get("maxmemory-policy")
  else if (typeof reply === "object" && reply !== null) value = (reply as Record<string, unknown>)["maxmemory-policy"]
  if (value instanceof Uint8Array) value = Buffer.from(value).toString()
  return typeof value === "string" && /^[\w-]{1,64}$/.test(value) ? value : undefined
}

const readPolicy = (node: Redis): Promise<PolicyReading> => {
  const name = nodeName(node)
  return node.config("GET", "maxmemory-policy").then(
    (reply): PolicyReading => {
      const policy = policyOf(reply)
      return policy === undefined ? { node: name, refused: "no maxmemory-policy in the reply" } : { node: name, policy }
    },
    // Redis answered with an error: CONFIG renamed or disabled, or denied by an ACL.
    (error: unknown): PolicyReading =>
      error instanceof ReplyError ? { node: name, refused: new RedisError({ operation: "CONFIG GET", cause: error }).message } : { node: name, failed: true }
  )
}

/**
 * Reads `maxmemory-policy` once per client, when the client is (or next becomes) ready,
 * and logs one warning on `runtime` unless it is `noeviction`. On a Cluster every master
 * known then is read, and one warning names those that evict. Never fails and never
 * delays a call: `CONFIG` renamed, disabled or denied is a debug log, no warning; a
 * connection failure before the answer tries again at the next "ready".
 */
export const watchEvictionPolicy = (client: Redis | Cluster, runtime: Runtime.Runtime<never>): void => {
  if (evictionWatched.has(client)) return
  evictionWatched.add(client)
  const log = (effect: Effect.Effect<void>) => void Runtime.runFork(runtime)(effect)
  const check = (): void => {
    client.off("ready", check)
    let readings: Promise<Array<PolicyReading>>
    try {
      readings = Promise.all((client instanceof Cluster ? client.nodes("master") : [client]).map(readPolicy))
    } catch {
      return
    }
    void readings.then((readings) => {
      const evicting = readings.flatMap((r) => ("policy" in r && r.policy !== "noeviction" ? [r] : []))
      if (evicting.length > 0) {
        const policies = [...new Set(evicting.map((r) => r.policy))].join(", ")
        log(
          Effect.logWarning(`Redis maxmemory-policy is ${policies}, not noeviction: ${EVICTION_WARNING}`).pipe(
            Effect.annotateLogs({
              "redis.maxmemory_policy": policies,
              "redis.nodes": evicting.map((r) => `${r.node} ${r.policy}`).join(", ")
            })
          )
        )
        return
      }
      const read = readings.flatMap((r) => ("policy" in r ? [r] : []))
      if (read.length > 0) {
        log(
          Effect.logDebug("Redis maxmemory-policy is noeviction").pipe(
            Effect.annotateLogs({ "redis.maxmemory_policy": "noeviction", "redis.nodes": read.map((r) => r.node).join(", ") })
          )
        )
      }
      const refused = readings.flatMap((r) => ("refused" in r ? [r] : []))
      if (refused.length > 0) {
        log(
          Effect.logDebug("Redis maxmemory-policy not checked: CONFIG GET was refused").pipe(
            Effect.annotateLogs({ "redis.nodes": refused.map((r) => r.node).join(", "), reason: refused[0]!.refused })
          )
        )
      }
      // Nothing read at all (the connection went away first): at the next "ready".
      if (readings.every((r) => "failed" in r)) client.on("ready", check)
    })
  }
  if (client.status === "ready") check()
  else client.on("ready", check)
}
