// RedisClient.layerConfig: RedisClient.layer with its config read through Effect's Config
// (here a ConfigProvider over a Map, as an app's environment would be). The URL is read
// with Config.redacted and must never show in a failure's printable forms.
import { inspect } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Config, ConfigError, ConfigProvider, Effect, Exit, Layer } from "effect"
import { freePort } from "../scripts/redis-server.mjs"
import { RedisClient, RedisError, SessionStore } from "../src/index.js"
import { redisUrl, uniquePrefix } from "./utils.js"

const withEnv = (env: Record<string, string>) => Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

/** `RedisClient.layerConfig(config)` under `env`. */
const fromEnv = (config: Parameters<typeof RedisClient.layerConfig>[0], env: Record<string, string>) =>
  RedisClient.layerConfig(config).pipe(Layer.provide(withEnv(env)))

const ping = Effect.flatMap(RedisClient, (redis) => redis.use("PING", (client) => client.ping()))

describe("RedisClient.layerConfig", () => {
  it.effect("connects to the URL read with Config.redacted; use and the store run over it", () =>
    Effect.gen(function* () {
      expect(yield* ping).toBe("PONG")
      const redis = yield* RedisClient
      expect(redis.client.status).toBe("ready")
      expect(redis.timeoutMillis).toBe(2000)
      expect(yield* Effect.promise(() => redis.unsafeSend("PING", (client) => client.ping()))).toBe("PONG")

      const store = yield* SessionStore
      const id = yield* store.createSessionId
      yield* store.set(id, { user_id: "u1" })
      expect(yield* store.get(id)).toEqual({ id, user_id: "u1" })
      yield* store.delete(id)
    }).pipe(
      Effect.provide(
        Layer.provideMerge(
          SessionStore.layer({ prefix: uniquePrefix("redis-config"), references: ["user_id"] }),
          fromEnv({ url: Config.redacted("REDIS_URL") }, { REDIS_URL: redisUrl() })
        )
      )
    )
  )

  it.effect("every field may be a Config, or the whole config one; durations in the one grammar", () =>
    Effect.gen(function* () {
      const url = new URL(redisUrl())
      const env = { REDIS_HOST: url.hostname, REDIS_PORT: url.port, REDIS_TIMEOUT: "2h", REDIS_CONNECT_TIMEOUT: "250 millis" }
      const fields = fromEnv(
        {
          host: Config.string("REDIS_HOST"),
          port: Config.integer("REDIS_PORT"),
          timeout: Config.string("REDIS_TIMEOUT"),
          connectTimeout: Config.string("REDIS_CONNECT_TIMEOUT").pipe(Config.withDefault("5 seconds"))
        },
        env
      )
      const timeout = yield* Effect.map(RedisClient, (redis) => redis.timeoutMillis).pipe(Effect.provide(fields))
      expect(timeout).toBe(7_200_000)

      const whole = fromEnv(Config.all({ url: Config.redacted("REDIS_URL"), timeout: Config.succeed("1.5 seconds") }), { REDIS_URL: redisUrl() })
      expect(yield* Effect.map(RedisClient, (redis) => redis.timeoutMillis).pipe(Effect.provide(whole))).toBe(1500)
      expect(yield* ping.pipe(Effect.provide(whole))).toBe("PONG")
    })
  )

  it.effect("a missing variable fails the layer with a ConfigError naming it, before any connection", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(ping.pipe(Effect.provide(fromEnv({ url: Config.redacted("REDIS_URL") }, {}))))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      expect(ConfigError.isConfigError(error)).toBe(true)
      expect((error as ConfigError.ConfigError)._op).toBe("MissingData")
      expect(String(error)).toContain("REDIS_URL")
    })
  )

  it.effect("a value the config cannot parse fails the same way; a duration it can read but not use is a SessionConfigError", () =>
    Effect.gen(function* () {
      const bad = yield* Effect.flip(
        ping.pipe(Effect.provide(fromEnv({ url: Config.redacted("REDIS_URL"), port: Config.integer("REDIS_PORT") }, { REDIS_URL: redisUrl(), REDIS_PORT: "six" })))
      )
      expect(ConfigError.isConfigError(bad)).toBe(true)
      const month = yield* Effect.flip(
        ping.pipe(Effect.provide(fromEnv({ url: Config.redacted("REDIS_URL"), timeout: Config.string("T") }, { REDIS_URL: redisUrl(), T: "1 month" })))
      )
      expect(month).toMatchObject({ _tag: "SessionConfigError", option: "timeout" })
    })
  )

  it.live("a connection that fails names the address, never the Redacted URL or its credentials", () =>
    Effect.gen(function* () {
      // A loopback port nobody listens on any more.
      const port = yield* Effect.promise(() => freePort())
      const url = `redis://alice:s3cret-pw@127.0.0.1:${port}/2`
      const layer = fromEnv(
        { url: Config.redacted("REDIS_URL"), connectTimeout: Config.string("REDIS_CONNECT_TIMEOUT") },
        { REDIS_URL: url, REDIS_CONNECT_TIMEOUT: "2 seconds" }
      )
      const exit = yield* Effect.exit(ping.pipe(Effect.provide(layer)))
      expect(Exit.isFailure(exit)).toBe(true)
      if (!Exit.isFailure(exit)) return
      const error = Cause.squash(exit.cause)
      expect(error).toBeInstanceOf(RedisError)
      expect((error as RedisError).operation).toBe("connect")
      expect((error as RedisError).message).toBe(`Redis connect failed: cannot connect to 127.0.0.1:${port} (ECONNREFUSED)`)
      const printed = {
        string: String(error),
        message: (error as RedisError).message,
        json: JSON.stringify(error),
        inspect: inspect(error, { depth: Infinity, showHidden: true }),
        causeJson: JSON.stringify((error as RedisError).cause),
        pretty: Cause.pretty(exit.cause, { renderErrorCause: true })
      }
      for (const [form, text] of Object.entries(printed)) {
        for (const needle of ["s3cret-pw", "alice", "redis://", url]) expect(text.includes(needle), `${form} shows ${needle}:\n${text}`).toBe(false)
      }
    })
  )
})
