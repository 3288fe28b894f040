// The factory's `store` option: a `SessionStoreService` built elsewhere (an in-process
// store from `SessionStore.makeMemory`, or any store an Effect program built), which
// replaces the Redis store the factory would build. The store brings its own options and
// backend, so the options that would configure them are refused beside it, by name.
import { Effect, Layer } from "effect"
import { SessionConfigError } from "../../SessionError.js"
import { STORE_OPTION_NAMES } from "../options.js"
import type { SessionStoreService } from "../store/types.js"

const configError = (option: string, reason: string) => new SessionConfigError({ option, reason })

const BUILD_HINT = 'build the service first, e.g. `Effect.runSync(SessionStore.makeMemory({ references: ["user_id"] }))`'

const CONNECTION_REASONS: Readonly<Record<string, string>> = {
  client: "give either `store` (a store with its own backend) or `client` (a Redis connection for the factory's store), not both",
  redis: "give either `store` (a store with its own backend) or `redis` (a Redis connection for the factory's store), not both",
  timeout: "is the Redis connection's: a store given as `store` has the timeout of the RedisClient it was built over, if any"
}

const isStoreService = (value: unknown): value is SessionStoreService => {
  if (typeof value !== "object" || value === null) return false
  const store = value as Partial<Record<keyof SessionStoreService, unknown>>
  return (
    typeof store.prefix === "string" &&
    typeof store.maxAgeMillis === "number" &&
    Array.isArray(store.references) &&
    typeof store.get === "function" &&
    typeof store.set === "function" &&
    typeof store.getSessionKey === "function"
  )
}

/**
 * The store given as `store`, or the `SessionConfigError` naming the first option that
 * cannot go with it (or `store` itself when it is not a built store).
 */
export const checkGivenStore = (options: Readonly<Record<string, unknown>>): SessionStoreService | SessionConfigError => {
  const store = options["store"]
  if (Layer.isLayer(store)) return configError("store", `is a Layer; the factory takes the store service itself: ${BUILD_HINT}`)
  if (Effect.isEffect(store)) return configError("store", `is an Effect that builds a store; run it: ${BUILD_HINT}`)
  if (!isStoreService(store)) return configError("store", `must be a SessionStoreService; ${BUILD_HINT}`)
  for (const [name, reason] of Object.entries(CONNECTION_REASONS)) {
    if (options[name] !== undefined) return configError(name, reason)
  }
  for (const name of STORE_OPTION_NAMES) {
    if (options[name] !== undefined) {
      return configError(
        name,
        `is the store's own option, fixed when the store given as \`store\` was built: give it there (\`SessionStore.makeMemory({ ${name} })\`)`
      )
    }
  }
  return store
}
