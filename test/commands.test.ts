// The command-counting helper (test/commands.ts) counts what it must: a known sequence of
// commands, one of them a script running two more inside it.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { commandsDuring, commandsDuringEffect } from "./commands.js"
import { redisUrl, uniquePrefix } from "./utils.js"

let client: Redis
let stats: Redis
const key = `${uniquePrefix("commands")}:k`

beforeAll(() => {
  client = new Redis(redisUrl())
  stats = new Redis(redisUrl())
})
afterAll(async () => {
  await client.del(key)
  await client.quit()
  await stats.quit()
})

const sequence = async () => {
  await client.set(key, "1", "PX", 60_000)
  await client.get(key)
  // One round trip; the server runs two more commands inside it.
  return client.eval("redis.call('INCR', KEYS[1]); return redis.call('GET', KEYS[1])", 1, key)
}

describe("commandsDuring", () => {
  it("counts what the server ran (scripts' inner commands included) and, with sent, each round trip in order", async () => {
    const counted = await commandsDuring(stats, sequence, { sent: true })
    expect(counted.result).toBe("2")
    expect(counted.ran).toEqual({ set: 1, get: 2, eval: 1, incr: 1 })
    expect(counted.total).toBe(5)
    expect(counted.sent.map((args) => args[0]!.toLowerCase())).toEqual(["set", "get", "eval"])
    expect(counted.sent[0]).toEqual(["set", key, "1", "PX", "60000"])
  })

  it("without sent, lists nothing sent; nothing done, nothing counted", async () => {
    expect(await commandsDuring(stats, sequence)).toMatchObject({ total: 5, sent: [] })
    expect(await commandsDuring(stats, async () => "idle", { sent: true })).toEqual({ result: "idle", ran: {}, total: 0, sent: [] })
  })

  it.effect("commandsDuringEffect counts an Effect run in the caller's fiber", () =>
    Effect.gen(function* () {
      const counted = yield* commandsDuringEffect(stats, Effect.promise(sequence), { sent: true })
      expect(counted).toMatchObject({ result: "2", total: 5 })
      expect(counted.sent).toHaveLength(3)
    })
  )
})
