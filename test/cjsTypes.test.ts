// The CommonJS types (dist/index.d.cts, `export =` with a merged namespace) carry what the
// ESM ones do: here, SessionSchema as a value, as the interface `SessionSchema<F>`, and as
// the namespace of type helpers (`SessionSchema.Type<typeof S>`, …). A consumer project,
// linked to this package's built dist/, is type-checked with the repo's TypeScript.
// Needs `npm run build` first (as test/dist.test.ts does).
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, expect, it } from "vitest"

const root = fileURLToPath(new URL("..", import.meta.url))
const dir = mkdtempSync(join(tmpdir(), "krss-cjs-types-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const consumer = (module: "cjs" | "esm") => `
  ${module === "cjs" ? `import KRSS = require("koa-redis-session-sets")` : `import * as KRSS from "koa-redis-session-sets"`}
  import { Schema } from "effect"
  const UserSession = KRSS.SessionSchema.make({ user_id: Schema.NumberFromString, role: Schema.Literal("admin", "user") })
  type User = KRSS.SessionSchema.Type<typeof UserSession>
  type Input = KRSS.SessionSchema.Input<typeof UserSession>
  type View = KRSS.SessionSchema.SessionView<typeof UserSession.fields>
  type StoreView = KRSS.SessionSchema.StoreView<typeof UserSession.fields>
  type KoaView = KRSS.SessionSchema.KoaSessionView<typeof UserSession.fields>
  type PromiseView = KRSS.SessionSchema.PromiseStoreView<typeof UserSession.fields>
  const schema: KRSS.SessionSchema<typeof UserSession.fields> = UserSession
  const user: User = { id: "an id", user_id: 1, role: "admin" }
  const input: Input = { role: "user" }
  // @ts-expect-error user_id is a number once decoded
  const wrong: Input = { user_id: "1" }
  export const all = [schema, user, input, wrong] as const
  export type Views = [View, StoreView, KoaView, PromiseView]
`

it("SessionSchema's value, interface and namespace of type helpers compile from CommonJS as from ESM", async () => {
  mkdirSync(join(dir, "node_modules"))
  symlinkSync(root, join(dir, "node_modules", "koa-redis-session-sets"), "dir")
  symlinkSync(join(root, "node_modules", "effect"), join(dir, "node_modules", "effect"), "dir")
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  writeFileSync(join(dir, "cjs.cts"), consumer("cjs"))
  writeFileSync(join(dir, "esm.ts"), consumer("esm"))
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: []
      },
      include: ["cjs.cts", "esm.ts"]
    })
  )
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
  const errors = await promisify(execFile)(process.execPath, [tsc, "-p", dir, "--pretty", "false"], { cwd: dir }).then(
    () => "",
    (error: { stdout?: string }) => error.stdout ?? String(error)
  )
  expect(errors).toBe("")
}, 120_000)
