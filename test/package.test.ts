// The package as a user gets it: `npm pack`, then the tarball installed into a
// fresh folder outside the repo, loaded with require()/import() and type-checked
// by consumer projects with `skipLibCheck: false`, first without @types/koa (an
// untyped `koa` is installed, as in a JavaScript-typed Koa app), then with it.
//
// CI builds dist/ before the tests, so the tarball is packed with `--ignore-scripts`
// (`prepack` would build a second time). The installs use npm's cache (filled by
// `npm ci`) with `--prefer-offline`, at the versions in our package-lock.json.
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const run = promisify(execFile)
const root = join(import.meta.dirname, "..")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"))
const locked = (name: string): string => `${name}@${lock.packages[`node_modules/${name}`].version}`
const tsc = join(root, "node_modules", ".bin", "tsc")
const newestSource = () => Math.max(...readdirSync(join(root, "src"), { recursive: true }).map((f) => statSync(join(root, "src", String(f))).mtimeMs))

// `npm test` puts npm_config_local_prefix=<repo> and friends in the environment;
// the consumer's npm must see only its own folder (the cache location may stay).
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || /^npm_config_(cache|registry|userconfig)$/i.test(k))
)
const npm = (cwd: string, args: Array<string>) => run("npm", args, { cwd, env, maxBuffer: 16 << 20 })

const tmp = mkdtempSync(join(tmpdir(), "krss-package-"))
const untyped = join(tmp, "without-types-koa")
const typed = join(tmp, "with-types-koa")
const withPlatform = join(tmp, "with-effect-platform")
let packed: { filename: string; files: Array<{ path: string }> }

const write = (dir: string, files: Record<string, string>) => {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
}

// What a user's project looks like: strict, and library .d.ts files checked too.
const tsconfig = (compilerOptions: Record<string, unknown>, include: Array<string>) =>
  JSON.stringify({ compilerOptions: { target: "ES2022", strict: true, skipLibCheck: false, noEmit: true, ...compilerOptions }, include })
const nodeNext = { module: "NodeNext", moduleResolution: "NodeNext" }
const node10 = { module: "commonjs", moduleResolution: "node10", esModuleInterop: true }

function storeDouble(omit: string): string {
  const operations: Record<string, string> = {
    get: "(id) => Effect.sync(() => ({ ...sessions.get(id) }))",
    set: "(id, values) => Effect.sync(() => void sessions.set(id, { ...sessions.get(id), ...strings(values), id }))",
    setExisting: "(id, values) => Effect.sync(() => sessions.has(id) && !!sessions.set(id, { ...sessions.get(id), ...strings(values) }))",
    unset: "(id, fields) => Effect.sync(() => { const s = sessions.get(id); for (const f of fields) delete s?.[f]; return s !== undefined })",
    touch: "(id) => Effect.sync(() => sessions.has(id))",
    delete: "(id) => Effect.sync(() => sessions.delete(id))",
    regenerate: "(id, newId = id + 'x') => Effect.sync(() => { const s = sessions.get(id); if (!s) return undefined; sessions.delete(id); sessions.set(newId, { ...s, id: newId }); return newId })",
    listByReference: "(field, value) => Effect.sync(() => [...sessions.values()].filter((s) => s[field] === String(value)).map((s) => s['id']!))",
    deleteByReference: "(field, value) => Effect.sync(() => [...sessions.values()].filter((s) => s[field] === String(value) && sessions.delete(s['id']!)).length)",
    listSessions: "(field, value) => Stream.fromIterable([...sessions.values()].filter((s) => s[field] === String(value)).map((s) => ({ id: s['id']! })))",
    lifetime: "(id) => Effect.sync(() => (sessions.has(id) ? {} : undefined))"
  }
  const members = Object.entries(operations).filter(([name]) => name !== omit).map(([name, body]) => `    ${name}: ${body},`)
  return `
    import { Effect, Layer, Stream } from "effect"
    import { SessionStore } from "koa-redis-session-sets"
    import type { SessionData, SessionStoreService, SessionValue } from "koa-redis-session-sets"
    const sessions = new Map<string, SessionData>()
    const strings = (values: Readonly<Record<string, SessionValue>>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]))
    export const double: SessionStoreService = {
      prefix: "test",
      references: ["user_id"],
      maxAgeMillis: 60_000,
      byteLength: 18,
      limits: { maxFields: 1000, maxFieldLength: 256, maxValueBytes: 65536 },
      createSessionId: Effect.succeed("a-test-session-id-000"),
      getSessionKey: (id) => \`test:{\${id}}\`,
      getReferenceKey: (field, value) => \`test:\${field}:{\${value}}\`,
  ${members.join("\n  ")}
    }
    export const layer: Layer.Layer<SessionStore> = Layer.succeed(SessionStore, double)
  `
}

const consumerFiles: Record<string, string> = {
  "package.json": JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }),
  // ESM consumer (.ts in a "type": "module" package).
  "esm.ts": `
    import factory, { SessionStore, RedisError, koaRedisSessionSets } from "koa-redis-session-sets"
    import type { KoaSession, SessionMiddleware } from "koa-redis-session-sets"
    const middleware: SessionMiddleware = factory({ keys: ["k"] }, { references: { user_id: {} } })
    const same: typeof koaRedisSessionSets = factory
    const layer: typeof SessionStore.layer = SessionStore.layer
    const isRedisError = (e: unknown): e is RedisError => e instanceof RedisError
    export const useSession = async (session: KoaSession) => (await session.get())["user_id"]
    export { middleware, same, layer, isRedisError }
  `,
  // CJS consumer (.cts): require() is the factory, carrying the named exports.
  "cjs.cts": `
    import factory = require("koa-redis-session-sets")
    const middleware: factory.SessionMiddleware = factory({ keys: ["k"] })
    const same: typeof factory = factory.default
    const layer = factory.SessionStore.layer
    const isRedisError = (e: unknown): e is factory.RedisError => e instanceof factory.RedisError
    const useSession = async (session: factory.KoaSession) => (await session.get())["user_id"]
    export = { middleware, same, layer, isRedisError, useSession }
  `,
  // node10 resolution (module commonjs): "types" → dist/index.d.cts.
  "node10.ts": `
    import factory = require("koa-redis-session-sets")
    import interop from "koa-redis-session-sets"
    const middleware: factory.SessionMiddleware = interop({ keys: ["k"] })
    export const all = [middleware, factory.SessionStore.layer, factory.default] as const
  `,
  // A test double written by hand against the public contract: it compiles only if
  // SessionStoreService asks for the operations alone (no Redis client, no internals).
  "double.ts": storeDouble(""),
  // …and the contract is enforced: the same double without one operation does not compile.
  "double-incomplete.ts": storeDouble("deleteByReference"),
  "tsconfig.json": tsconfig(nodeNext, ["esm.ts", "cjs.cts"]),
  "tsconfig.double.json": tsconfig(nodeNext, ["double.ts", "double-incomplete.ts"]),
  "tsconfig.node10.json": tsconfig(node10, ["node10.ts"])
}

// With @types/koa: Koa's ctx.session is the KoaSession, in every module flavour.
const koaApp = (importLines: string, sessionType: string, extra = "") => `
  ${importLines}
  const app = new Koa()
  app.keys = ["k"]
  app.use(factory(app, { references: { user_id: {} } }))
  app.use(async (ctx) => {
    const session: ${sessionType} = ctx.session
    await ctx.session.set({ user_id: 1 })
    ctx.body = await session.get()
    ${extra}
  })
`
const esmImports = `import Koa from "koa"\nimport factory from "koa-redis-session-sets"\nimport type { KoaSession } from "koa-redis-session-sets"`
const cjsImports = `import Koa = require("koa")\nimport factory = require("koa-redis-session-sets")`
const typedFiles: Record<string, string> = {
  "koa.ts": koaApp(esmImports, "KoaSession"),
  "koa.cts": koaApp(cjsImports, "factory.KoaSession"),
  "koa10.ts": koaApp(cjsImports, "factory.KoaSession"),
  // Must not compile: ctx.session is not `any`.
  "nope.ts": koaApp(esmImports, "KoaSession", "ctx.session.nope()"),
  "nope.cts": koaApp(cjsImports, "factory.KoaSession", "ctx.session.nope()"),
  "nope10.ts": koaApp(cjsImports, "factory.KoaSession", "ctx.session.nope()"),
  "tsconfig.koa.json": tsconfig(nodeNext, ["koa.ts", "koa.cts", "nope.ts", "nope.cts"]),
  "tsconfig.koa10.json": tsconfig(node10, ["koa10.ts", "nope10.ts"])
}

// The ./http subpath, where @effect/platform (an optional peer) is installed.
const httpConsumer = (imports: string) => `
    ${imports}
    import { HttpRouter, HttpServerResponse } from "@effect/platform"
    import { Effect } from "effect"
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/", Effect.map(Session, () => HttpServerResponse.empty())),
      SessionHttp.middleware({ keys: ["k"] })
    )
    export const checked: HttpRouter.HttpRouter<never, never> extends never ? never : typeof app = app
    export const listener = SessionHttp.toNodeListener(async () => new Response(null))
`
const platformFiles: Record<string, string> = {
  "http.ts": httpConsumer(`import { SessionHttp } from "koa-redis-session-sets/http"\n    import { Session } from "koa-redis-session-sets"`),
  "http.cts": httpConsumer(`import { SessionHttp } from "koa-redis-session-sets/http"\n    import factory = require("koa-redis-session-sets")\n    const { Session } = factory`),
  "http10.ts": httpConsumer(`import { SessionHttp } from "koa-redis-session-sets/http"\n    import { Session } from "koa-redis-session-sets"`),
  "tsconfig.http.json": tsconfig(nodeNext, ["http.ts", "http.cts"]),
  "tsconfig.http10.json": tsconfig(node10, ["http10.ts"])
}

const installed = (dir: string, name: string) => existsSync(join(dir, "node_modules", ...name.split("/"), "package.json"))

/** Type-checks a consumer project with the repo's `tsc` (5.9.3); returns its errors, one a line. */
const typecheck = async (dir: string, project: string): Promise<Array<string>> => {
  const out = await run(process.execPath, [tsc, "-p", project, "--pretty", "false"], { cwd: dir, maxBuffer: 16 << 20 }).then(
    (r) => r.stdout,
    (e: { stdout?: string; code?: unknown }) => {
      if (typeof e.stdout !== "string" || (e.code !== 1 && e.code !== 2)) throw e
      return e.stdout
    }
  )
  return out.split("\n").filter((l) => /error TS\d+/.test(l)).sort()
}

// The same check, through the same TypeScript's API, reporting every error `tsc` would
// except those located inside the other packages' .d.ts files (effect, ioredis, @types/*):
// checking all of effect's declarations costs ~12 s of CPU per project, which one full
// `tsc` run above pays once (and they are clean). Our dist/*.d.ts are checked in full.
const checker = `
const ts = require(${JSON.stringify(join(root, "node_modules", "typescript"))})
const path = require("node:path")
const config = ts.getParsedCommandLineOfConfigFile(path.resolve(process.argv[1]), {}, {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\\n")) }
})
const program = ts.createProgram({ rootNames: config.fileNames, options: config.options })
const checked = (f) => !f.fileName.includes("/node_modules/") || f.fileName.includes("/node_modules/koa-redis-session-sets/")
const diagnostics = [...config.errors, ...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]
for (const f of program.getSourceFiles()) {
  diagnostics.push(...program.getSyntacticDiagnostics(f))
  if (checked(f)) diagnostics.push(...program.getSemanticDiagnostics(f))
}
const ours = program.getSourceFiles().filter((f) => f.fileName.includes("/node_modules/koa-redis-session-sets/dist/"))
if (ours.length === 0) throw new Error("koa-redis-session-sets' types were not loaded")
for (const d of diagnostics) {
  const text = ts.flattenDiagnosticMessageText(d.messageText, " ")
  if (!d.file) { console.log("error TS" + d.code + ": " + text); continue }
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start ?? 0)
  console.log(path.relative(process.cwd(), d.file.fileName) + "(" + (line + 1) + "," + (character + 1) + "): error TS" + d.code + ": " + text)
}
`
const typecheckOurs = async (dir: string, project: string): Promise<Array<string>> => {
  const { stdout } = await run(process.execPath, ["-e", checker, project], { cwd: dir, maxBuffer: 16 << 20 })
  return stdout.split("\n").filter((l) => /error TS\d+/.test(l)).sort()
}

const nopeError = (file: string) =>
  expect.stringMatching(new RegExp(`^${file.replace(".", "\\.")}\\(\\d+,\\d+\\): error TS2339: Property 'nope' does not exist on type 'KoaSession'\\.$`))

beforeAll(async () => {
  // `npm test` on a fresh clone has no dist yet; CI builds first, so this is then a no-op.
  const built = join(root, "dist", "index.cjs")
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource()) await run("npm", ["run", "build"], { cwd: root })
  const { stdout } = await npm(root, ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp])
  packed = JSON.parse(stdout)[0]
  const tarball = join(tmp, packed.filename)
  const base = [tarball, locked("effect"), locked("ioredis"), locked("@types/node"), locked("koa")]
  const install = (dir: string, extra: Array<string>) => {
    mkdirSync(dir)
    write(dir, consumerFiles)
    return npm(dir, ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", ...base, ...extra])
  }
  await Promise.all([install(untyped, []), install(typed, [locked("@types/koa")]), install(withPlatform, [locked("@effect/platform")])])
  write(typed, typedFiles)
  write(withPlatform, platformFiles)
}, 120_000)

afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe("npm pack", () => {
  it("ships the build, the types, LICENSE, README.md and CHANGELOG.md, and no tests", () => {
    const paths = packed.files.map((f) => f.path)
    expect(paths).toEqual(
      expect.arrayContaining([
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "package.json",
        "dist/index.js",
        "dist/index.cjs",
        "dist/index.d.ts",
        "dist/index.d.cts",
        "dist/http.js",
        "dist/http.cjs",
        "dist/http.d.ts",
        "dist/http.d.cts"
      ])
    )
    expect(paths.filter((p) => p.startsWith("test/"))).toEqual([])
  })

  it("builds dist/ before packing (prepack), and the package says where it lives", () => {
    expect(pkg.scripts.prepack).toBe("npm run build")
    const manifest = JSON.parse(readFileSync(join(untyped, "node_modules", "koa-redis-session-sets", "package.json"), "utf8"))
    expect(manifest).toMatchObject({
      license: "MIT",
      repository: { type: "git", url: "git+https://github.com/koajs/redis-session-sets.git" },
      homepage: "https://github.com/koajs/redis-session-sets#readme",
      bugs: { url: "https://github.com/koajs/redis-session-sets/issues" }
    })
    expect(manifest.keywords).toEqual(expect.arrayContaining(["koa", "redis", "session", "effect"]))
    const license = readFileSync(join(untyped, "node_modules", "koa-redis-session-sets", "LICENSE"), "utf8")
    expect(license).toContain("Copyright (c) 2016 Jonathan Ong me@jongleberry.com")
    expect(license).toMatch(/Copyright \(c\) 2026 .*contributors/)
    expect(license).toContain("Permission is hereby granted, free of charge")
  })
})

describe("the installed package", () => {
  it("require() is the factory, and import() has the same default and named exports", async () => {
    const cjs = await run(process.execPath, ["-e", `
      const factory = require("koa-redis-session-sets")
      const { SessionStore } = require("koa-redis-session-sets")
      console.log(JSON.stringify({ type: typeof factory, self: factory.default === factory, layer: typeof SessionStore.layer, keys: Object.keys(factory).sort() }))
    `], { cwd: untyped })
    const esm = await run(process.execPath, ["--input-type=module", "-e", `
      const m = await import("koa-redis-session-sets")
      console.log(JSON.stringify({ type: typeof m.default, self: m.default === m.koaRedisSessionSets, layer: typeof m.SessionStore.layer, keys: Object.keys(m).sort() }))
    `], { cwd: untyped })
    const fromCjs = JSON.parse(cjs.stdout)
    const fromEsm = JSON.parse(esm.stdout)
    expect(fromCjs).toMatchObject({ type: "function", self: true, layer: "function" })
    expect(fromCjs.keys).toEqual(expect.arrayContaining(["default", "koaRedisSessionSets", "SessionStore", "RedisClient", "RedisError"]))
    expect(fromEsm).toEqual(fromCjs)
  })

  it.concurrent("types compile without @types/koa (ESM and CJS under NodeNext, skipLibCheck: false)", async ({ expect }) => {
    expect(installed(untyped, "koa")).toBe(true)
    expect(installed(untyped, "@types/koa")).toBe(false)
    expect(await typecheck(untyped, "tsconfig.json")).toEqual([])
  }, 120_000)

  it.concurrent("a hand-written SessionStoreService test double type-checks against the public .d.ts; one missing an operation does not", async ({ expect }) => {
    const errors = await typecheck(untyped, "tsconfig.double.json")
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^double-incomplete\.ts.*error TS2741: Property 'deleteByReference' is missing/)
  }, 120_000)

  it.concurrent("types compile without @types/koa under moduleResolution node10 (our .d.cts and the consumer checked)", async ({ expect }) => {
    expect(installed(untyped, "@types/koa")).toBe(false)
    expect(await typecheckOurs(untyped, "tsconfig.node10.json")).toEqual([])
  }, 120_000)

  it.concurrent("with @types/koa, Koa's ctx.session is the KoaSession (ESM and CJS under NodeNext; our .d.ts files and the consumer checked)", async ({ expect }) => {
    expect(installed(typed, "@types/koa")).toBe(true)
    // Only the calls of a method KoaSession does not have fail.
    expect(await typecheckOurs(typed, "tsconfig.koa.json")).toEqual([nopeError("nope.cts"), nopeError("nope.ts")])
  }, 120_000)

  it.concurrent("with @types/koa, Koa's ctx.session is the KoaSession under moduleResolution node10 (our .d.cts and the consumer checked)", async ({ expect }) => {
    expect(await typecheckOurs(typed, "tsconfig.koa10.json")).toEqual([nopeError("nope10.ts")])
  }, 120_000)
})

describe("the installed package's ./http subpath", () => {
  it("needs @effect/platform only when ./http is loaded (a Koa-only app installs nothing more)", async () => {
    expect(installed(untyped, "@effect/platform")).toBe(false)
    const loaded = await run(process.execPath, ["--input-type=module", "-e", `
      const m = await import("koa-redis-session-sets")
      const http = await import("koa-redis-session-sets/http").then(() => "loaded", (e) => String(e.message))
      console.log(JSON.stringify({ factory: typeof m.default, http }))
    `], { cwd: untyped })
    const out = JSON.parse(loaded.stdout)
    expect(out.factory).toBe("function")
    expect(out.http).toContain("@effect/platform")
  })

  it("require() and import() give SessionHttp, and the Session tag is the one of the main entry", async () => {
    expect(installed(withPlatform, "@effect/platform")).toBe(true)
    const script = (load: string) => `${load}
      console.log(JSON.stringify({ middleware: typeof http.SessionHttp.middleware, make: typeof http.make, listener: typeof http.toNodeListener, same: typeof main.Session.key }))`
    const cjs = await run(process.execPath, ["-e", script(`const http = require("koa-redis-session-sets/http"); const main = require("koa-redis-session-sets")`)], { cwd: withPlatform })
    const esm = await run(process.execPath, ["--input-type=module", "-e", script(`const http = await import("koa-redis-session-sets/http"); const main = await import("koa-redis-session-sets")`)], { cwd: withPlatform })
    expect(JSON.parse(cjs.stdout)).toEqual({ middleware: "function", make: "function", listener: "function", same: "string" })
    expect(JSON.parse(esm.stdout)).toEqual(JSON.parse(cjs.stdout))
  })

  it.concurrent("types compile under NodeNext (ESM and CJS) and node10 (typesVersions), our .d.ts files checked", async ({ expect }) => {
    expect(await typecheckOurs(withPlatform, "tsconfig.http.json")).toEqual([])
    expect(await typecheckOurs(withPlatform, "tsconfig.http10.json")).toEqual([])
  }, 120_000)
})
