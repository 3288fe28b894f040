/**
 * Lua scripts run by `EVALSHA`, falling back to `EVAL` once on `NOSCRIPT`.
 *
 * We keep our own small runner instead of ioredis `defineCommand`: it does not
 * mutate a client the application may own, needs no interface augmentation to be
 * typed, and `EVAL` as the fallback loads the script on whichever cluster node the
 * keys route to (a `SCRIPT LOAD` would go to a random node).
 *
 * @since 4.0.0
 */
import { createHash } from "node:crypto"
import type { Cluster, Redis } from "ioredis"

/**
 * A Lua script with its SHA1, computed once when the module loads.
 *
 * @since 4.0.0
 * @category models
 */
export interface LuaScript {
  readonly name: string
  readonly numberOfKeys: number
  readonly source: string
  readonly sha1: string
}

/**
 * @since 4.0.0
 * @category constructors
 */
export const make = (name: string, numberOfKeys: number, source: string): LuaScript => ({
  name,
  numberOfKeys,
  source,
  sha1: createHash("sha1").update(source).digest("hex")
})

const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.startsWith("NOSCRIPT")

/**
 * Runs `script` with `keys` (every key it touches goes here, so `keyPrefix` and
 * cluster routing apply) and `args`. One round trip once the script is cached.
 *
 * @since 4.0.0
 * @category execution
 */
export const evaluate = (
  client: Redis | Cluster,
  script: LuaScript,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>
): Promise<unknown> => {
  if (keys.length !== script.numberOfKeys) {
    return Promise.reject(new Error(`${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`))
  }
  return client.evalsha(script.sha1, script.numberOfKeys, ...keys, ...args).catch((error: unknown) => {
    if (!isNoScript(error)) throw error
    return client.eval(script.source, script.numberOfKeys, ...keys, ...args)
  })
}
