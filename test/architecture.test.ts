// The layout the README's "Architecture" section describes, checked on src/: no import
// cycles (type imports included), imports flowing one way between layers, no file over
// 400 lines, and the pure core free of direct `effect` imports.
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, normalize, relative } from "node:path"
import { describe, expect, it } from "vitest"

const src = join(import.meta.dirname, "..", "src")
const files = readdirSync(src, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.split("\\").join("/"))

const IMPORT = /^\s*(?:import|export)\s+(type\s+)?[^"';]*?from\s+"([^"]+)"/gm

interface Edge {
  readonly to: string
  readonly typeOnly: boolean
  readonly names: string
}

const importsOf = (file: string): Array<Edge> => {
  const text = readFileSync(join(src, file), "utf8")
  const edges: Array<Edge> = []
  for (const match of text.matchAll(IMPORT)) {
    const specifier = match[2]!
    if (!specifier.startsWith(".")) {
      edges.push({ to: specifier, typeOnly: match[1] !== undefined, names: match[0] })
      continue
    }
    const target = relative(src, normalize(join(src, dirname(file), specifier))).replace(/\.js$/, ".ts")
    edges.push({ to: target.split("\\").join("/"), typeOnly: match[1] !== undefined, names: match[0] })
  }
  return edges
}
const graph = new Map(files.map((f) => [f, importsOf(f)] as const))

// Lower layers never import higher ones: adapters → Session → SessionStore → backends → RedisClient.
const LAYERS: ReadonlyArray<readonly [string, (file: string) => boolean]> = [
  ["core", (f) => /^(LuaScript|SessionError|Csrf)\.ts$/.test(f) || /^internal\/(keys|validate|duration|deadlines|signature|options)\.ts$/.test(f)],
  ["redis", (f) => f === "RedisClient.ts" || f.startsWith("internal/redis/")],
  ["store", (f) => f === "SessionStore.ts" || f === "SessionMetrics.ts" || f.startsWith("internal/store/")],
  ["session", (f) => f === "Session.ts" || f.startsWith("internal/session/")],
  [
    "adapters",
    (f) =>
      f === "Koa.ts" ||
      f === "Http.ts" ||
      f === "SessionSchema.ts" ||
      f.startsWith("internal/koa/") ||
      f.startsWith("internal/http/") ||
      f.startsWith("internal/schema/")
  ],
  ["entry", (f) => f === "index.ts"]
]
const layerOf = (file: string): number => LAYERS.findIndex(([, test]) => test(file))

describe("src/ layout", () => {
  it("puts every source file in a layer", () => {
    expect(files.filter((f) => layerOf(f) < 0)).toEqual([])
  })

  it("has no import cycles, type imports included", () => {
    const cycles: Array<string> = []
    const state = new Map<string, "visiting" | "done">()
    const visit = (file: string, path: Array<string>) => {
      if (state.get(file) === "done") return
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].join(" → "))
        return
      }
      state.set(file, "visiting")
      for (const edge of graph.get(file) ?? []) if (graph.has(edge.to)) visit(edge.to, [...path, file])
      state.set(file, "done")
    }
    for (const file of files) visit(file, [])
    expect(cycles).toEqual([])
  })

  it("imports flow one way: no module imports a module of a higher layer", () => {
    const upward: Array<string> = []
    for (const [file, edges] of graph) {
      for (const edge of edges) {
        if (graph.has(edge.to) && layerOf(edge.to) > layerOf(file)) upward.push(`${file} → ${edge.to}`)
      }
    }
    expect(upward).toEqual([])
  })

  it("keeps every source file under 400 lines", () => {
    const long = files.map((f) => [f, readFileSync(join(src, f), "utf8").split("\n").length] as const).filter(([, n]) => n > 400)
    expect(long).toEqual([])
  })

  it("keeps the pure core (keys, validation, plans, actions, Lua sources) free of value imports of effect", () => {
    const pure = files.filter((f) => /^internal\/(keys|validate)\.ts$|^internal\/store\/(plan|action|types)\.ts$|^internal\/store\/lua\//.test(f))
    expect(pure.length).toBeGreaterThan(10)
    const offenders = pure.flatMap((f) => graph.get(f)!.filter((e) => e.to === "effect" && !e.typeOnly).map(() => f))
    expect(offenders).toEqual([])
  })
})
