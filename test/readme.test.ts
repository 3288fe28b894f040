// The README's examples are these files, verbatim, and here they run against a real Redis.
import { readFileSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import { describe, expect, inject, it } from "vitest"
import { Browser } from "./koaUtils.js"

const root = new URL("..", import.meta.url)
const readme = readFileSync(new URL("README.md", root), "utf8")
const example = (name: string) => readFileSync(new URL(`examples/${name}`, root), "utf8").trimEnd()

describe("README", () => {
  it("shows the example files verbatim", () => {
    for (const name of ["quickstart.mjs", "revoke-job.ts"]) expect(readme, name).toContain(example(name))
  })

  it("the Koa quick start and the Effect revoke job work as shown", async () => {
    process.env["REDIS_URL"] = inject("redisUrl")
    process.env["PORT"] = "0"
    const quickstart = await import("../examples/quickstart.mjs")
    const { main } = await import("../examples/revoke-job.js")
    try {
      const { port } = quickstart.server.address() as AddressInfo
      const ann = new Browser(`http://127.0.0.1:${port}`)
      const bob = new Browser(`http://127.0.0.1:${port}`)
      expect(await (await ann.request("/")).json()).toEqual({})
      expect(ann.jar.size).toBe(0)
      for (const b of [ann, bob]) expect(await (await b.request("/login")).json()).toMatchObject({ user_id: "1" })
      expect(await quickstart.signOutEverywhere(1)).toBe(2)
      expect(await (await ann.request("/")).json()).toEqual({})

      await ann.request("/login")
      await bob.request("/login")
      expect(await Effect.runPromise(main(1))).toBe(2)
      expect(await (await bob.request("/")).json()).toEqual({})
      await bob.request("/login")
      await bob.request("/logout")
      expect(bob.jar.get("session-id")).toBeUndefined()
    } finally {
      await new Promise((resolve) => quickstart.server.close(resolve))
      await quickstart.Session.close()
      await quickstart.client.quit()
    }
  })
})
