// @ts-check
// Layers built from configuration (environment variables, or any ConfigProvider). The
// Redis URL is read as Redacted: it never shows in logs, errors or traces.
//   REDIS_URL=redis://127.0.0.1:6379 node examples/config.mjs
import { fileURLToPath } from "node:url"
import { Config, Effect, Layer } from "effect"
import { RedisClient, SessionStore } from "koa-redis-session-sets"

export const StoreFromConfig = SessionStore.layerConfig({
  namespace: Config.string("SESSION_NAMESPACE").pipe(Config.withDefault("myapp")),
  references: Config.succeed(["user_id"]),
  maxAge: Config.string("SESSION_MAX_AGE").pipe(Config.withDefault("28 days"))
}).pipe(Layer.provide(RedisClient.layerConfig({ url: Config.redacted("REDIS_URL") })))

export const main = Effect.gen(function* () {
  const store = yield* SessionStore
  return { prefix: store.prefix, maxAgeMillis: store.maxAgeMillis }
}).pipe(Effect.provide(StoreFromConfig))

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await Effect.runPromise(main))
