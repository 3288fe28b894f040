// One duration grammar for every duration option and argument: numbers are
// milliseconds, strings are read by `ms` (v3's parser) and else by Effect's
// `Duration.decodeUnknown`, other `Duration.DurationInput`s are decoded by Effect.
// What neither parses ("1 month" included) is refused, never guessed.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import Koa from "koa"
import { Redis } from "ioredis"
import koaRedisSessionSets, { InvalidSessionData, RedisClient, SessionConfigError, SessionStore } from "../src/index.js"
import type { SessionStoreOptions } from "../src/index.js"
import { durationMillis, parseDurationString, timeoutMillis, toMillis } from "../src/internal/duration.js"
import { pttls, Raw, redisUrl, storeLayer, uniquePrefix } from "./utils.js"

const SECOND = 1000
const HOUR = 3600 * SECOND
const DAY = 24 * HOUR

/** Accepted by every duration option and argument, with the milliseconds it stands for. */
const accepted: ReadonlyArray<readonly [unknown, number]> = [
  [1500, 1500],
  ["500", 500],
  ["2h", 2 * HOUR],
  ["2H", 2 * HOUR],
  ["28 days", 28 * DAY],
  ["1.5 hours", 1.5 * HOUR],
  ["10s", 10 * SECOND],
  ["3 weeks", 21 * DAY],
  ["1y", 365.25 * DAY],
  // Effect's grammar, where `ms` has no answer.
  ["250 millis", 250],
  ["2 seconds", 2 * SECOND],
  ["1 minute", 60 * SECOND],
  [Duration.seconds(3), 3 * SECOND],
  [Duration.millis(1500), 1500],
  [[2, 500_000_000], 2500],
  [BigInt(5_000_000), 5]
]

/** No duration at all: refused everywhere. */
const unparsed: ReadonlyArray<unknown> = ["1 month", "2 months", "", "abc", "2 fortnights", " 2h", "1e3", true, {}, [1], null]

/** Durations, but out of range for an option: refused by every option. */
const outOfRange: ReadonlyArray<unknown> = ["-1h", "-1 hours", -5, Number.NaN, 0, "0", Duration.zero, Number.POSITIVE_INFINITY, Duration.infinity]

describe("the grammar", () => {
  it("accepted inputs and their milliseconds", () => {
    for (const [input, millis] of accepted) {
      expect(durationMillis(input), String(input)).toBe(millis)
      expect(toMillis(input as never), String(input)).toBe(millis)
      // Beyond Node's timer limit, a timeout is refused (see the ranges).
      if (millis <= 2 ** 31 - 1) expect(timeoutMillis(input), String(input)).toBe(millis)
    }
    expect(parseDurationString("2h")).toBe(2 * HOUR)
    expect(parseDurationString("250 millis")).toBe(250)
  })

  it("what neither ms nor Effect parses is no duration: \"1 month\" is not 28 days", () => {
    for (const input of unparsed) {
      expect(durationMillis(input), String(input)).toBeUndefined()
      expect(toMillis(input as never), String(input)).toBeUndefined()
      expect(timeoutMillis(input), String(input)).toMatchObject({ reason: expect.stringMatching(/must be a duration/) })
    }
    expect(parseDurationString("1 month")).toBeUndefined()
    expect(parseDurationString("x".repeat(200))).toBeUndefined()
  })

  it("ranges: maxAge from 1 ms to 1000 years, timeouts positive up to Node's timer limit (rounded up)", () => {
    for (const input of outOfRange) {
      expect(toMillis(input as never), String(input)).toBeUndefined()
      expect(timeoutMillis(input), String(input)).toMatchObject({ reason: expect.stringMatching(/positive, finite/) })
    }
    expect(toMillis("1000 years")).toBe(Math.round(1000 * 365.25 * DAY))
    expect(toMillis("1001 years")).toBeUndefined()
    expect(toMillis(0.4)).toBeUndefined()
    expect(timeoutMillis(0.4)).toBe(1)
    expect(timeoutMillis(2 ** 31 - 1)).toBe(2 ** 31 - 1)
    expect(timeoutMillis("25 days")).toMatchObject({ reason: expect.stringMatching(/timer limit/) })
  })
})

describe("options", () => {
  // Never connects: the factory only needs a client to hold.
  let idle: Redis
  beforeAll(() => {
    idle = new Redis({ lazyConnect: true })
  })
  afterAll(() => {
    idle.disconnect()
  })

  const app = (): Koa => {
    const koa = new Koa()
    koa.keys = ["a secret"]
    return koa
  }

  const factoryError = (options: Record<string, unknown>): SessionConfigError => {
    let thrown: unknown
    try {
      const mw = koaRedisSessionSets(app(), { client: idle, ...options } as never)
      void mw.close()
    } catch (error) {
      thrown = error
    }
    expect(thrown, String(Object.values(options)[0])).toBeInstanceOf(SessionConfigError)
    return thrown as SessionConfigError
  }

  /** The factory's store maxAge and its client's timeout, in milliseconds. */
  const factoryValues = async (options: Record<string, unknown>) => {
    const url = new URL(redisUrl())
    // Connects only if asked to (close() then quits a live connection to the test server).
    const mw = koaRedisSessionSets(app(), { redis: { host: url.hostname, port: Number(url.port), lazyConnect: true }, ...options } as never)
    try {
      const timeout = await mw.runtime.runPromise(Effect.map(RedisClient, (redis) => redis.timeoutMillis))
      return { maxAge: mw.options.maxAge, storeMaxAge: mw.store.maxAge, timeout }
    } finally {
      await mw.close()
    }
  }

  it("the Koa factory accepts timeout \"2h\" and maxAge \"250 millis\"", async () => {
    expect(await factoryValues({ timeout: "2h", maxAge: "250 millis" })).toEqual({ maxAge: 250, storeMaxAge: 250, timeout: 2 * HOUR })
    expect(await factoryValues({ timeout: "250 millis", maxAge: "2h" })).toEqual({ maxAge: 2 * HOUR, storeMaxAge: 2 * HOUR, timeout: 250 })
    expect(await factoryValues({ timeout: Duration.seconds(3), maxAge: 1500 })).toEqual({ maxAge: 1500, storeMaxAge: 1500, timeout: 3000 })
  })

  it("the Koa factory throws SessionConfigError naming maxAge or timeout for what is refused", () => {
    const month = factoryError({ maxAge: "1 month" })
    expect(month.option).toBe("maxAge")
    expect(month.message).toMatch(/cannot parse "1 month" as a duration/)
    expect(month.message).not.toMatch(/month"? or/)
    for (const value of [...unparsed.filter((value) => value !== null), ...outOfRange]) {
      expect(factoryError({ maxAge: value }).option, String(value)).toBe("maxAge")
      expect(factoryError({ timeout: value }).option, String(value)).toBe("timeout")
    }
    expect(factoryError({ maxAge: "-1 hours" }).message).toMatch(/must be a positive duration/)
    expect(factoryError({ timeout: "1 month" }).message).toMatch(/must be a duration.*got "1 month"/)
  })

  it.effect("SessionStore.layer: the same grammar for maxAge", () =>
    Effect.gen(function* () {
      const maxAgeOf = (maxAge: unknown) =>
        Effect.flatMap(SessionStore, (store) => Effect.succeed(store.maxAgeMillis)).pipe(
          Effect.provide(storeLayer({ prefix: uniquePrefix("duration"), maxAge } as SessionStoreOptions))
        )
      for (const [input, millis] of accepted) expect(yield* maxAgeOf(input), String(input)).toBe(millis)
      for (const input of [...unparsed.filter((value) => value !== null), ...outOfRange]) {
        const error = yield* Effect.flip(maxAgeOf(input))
        expect(error, String(input)).toBeInstanceOf(SessionConfigError)
        expect((error as SessionConfigError).option).toBe("maxAge")
      }
    })
  )

  it.scoped("RedisClient: timeout and connectTimeout take the same grammar", () =>
    Effect.gen(function* () {
      const timeoutOf = (config: Record<string, unknown>) =>
        Effect.scoped(Effect.map(RedisClient.make({ url: redisUrl(), ...config }), (redis) => redis.timeoutMillis))
      expect(yield* timeoutOf({ timeout: "2h", connectTimeout: "2s" })).toBe(2 * HOUR)
      expect(yield* timeoutOf({ timeout: "250 millis", connectTimeout: "5 seconds" })).toBe(250)
      for (const [config, option] of [
        [{ timeout: "1 month" }, "timeout"],
        [{ timeout: 0 }, "timeout"],
        [{ connectTimeout: "abc" }, "connectTimeout"],
        [{ connectTimeout: "-1h" }, "connectTimeout"]
      ] as const) {
        const error = yield* Effect.flip(timeoutOf(config))
        expect(error, JSON.stringify(config)).toBeInstanceOf(SessionConfigError)
        expect((error as SessionConfigError).option).toBe(option)
      }
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis({ lazyConnect: true })),
        (client) => Effect.sync(() => client.disconnect())
      )
      expect(RedisClient.unsafeFromClient(client, { timeout: "2h" }).timeoutMillis).toBe(2 * HOUR)
      expect(() => RedisClient.unsafeFromClient(client, { timeout: "1 month" })).toThrow(SessionConfigError)
      const layered = yield* Effect.map(RedisClient, (redis) => redis.timeoutMillis).pipe(
        Effect.provide(RedisClient.layerFromClient(client, { timeout: "1.5 hours" }))
      )
      expect(layered).toBe(1.5 * HOUR)
    })
  )
})

describe("a call's maxAge", () => {
  const layer = Layer.merge(storeLayer({ prefix: uniquePrefix("duration") }), Raw.layer)

  it.effect("\"250 millis\", \"2h\" and Durations set the TTL; \"1 month\" and \"abc\" fail with InvalidSessionData (maxAge)", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore
      const client = yield* Raw
      const id = yield* store.createSessionId
      for (const [maxAge, millis] of [["250 millis", 250], ["2h", 2 * HOUR], [Duration.seconds(3), 3000], [1500, 1500]] as const) {
        yield* store.set(id, { a: 1 }, maxAge)
        const [ttl] = yield* pttls(client, [store.getSessionKey(id)])
        expect(ttl, String(maxAge)).toBeGreaterThan(millis - 100)
        expect(ttl, String(maxAge)).toBeLessThanOrEqual(millis)
      }
      for (const maxAge of ["1 month", "abc", "-1h", Number.NaN, Duration.infinity]) {
        const error = yield* Effect.flip(store.set(id, { a: 1 }, maxAge))
        expect(error, String(maxAge)).toBeInstanceOf(InvalidSessionData)
        expect((error as InvalidSessionData).field).toBe("maxAge")
        expect(yield* Effect.flip(store.touch(id, maxAge))).toMatchObject({ _tag: "InvalidSessionData", field: "maxAge" })
      }
      yield* store.delete(id)
    }).pipe(Effect.provide(layer))
  )
})
