// Every package the repository imports is declared in package.json, so that a fresh
// `npm ci` (or a user's install) has it, instead of it being found by luck as some other
// package's dependency. The bare specifiers of src/, test/, bench/, scripts/, examples/
// and the root config files are read with TypeScript's own import scanner (static
// `import … from` / `export … from`, `import("x")`, `require("x")`; comments and strings
// are not imports); relative paths, `node:` and Node's builtin modules are left out.
import { readdirSync, readFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { join, relative } from "node:path"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const root = join(import.meta.dirname, "..")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  name: string
  dependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

const DIRS = ["src", "test", "bench", "scripts", "examples"]
const ROOT_FILES = ["vitest.config.ts", "tsup.config.ts"]
const SOURCE = /\.(?:[cm]?[jt]s|tsx|jsx)$/

const filesUnder = (dir: string): Array<string> =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === "node_modules" || entry.name === "dist") return []
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return filesUnder(path)
    return SOURCE.test(entry.name) ? [path] : []
  })

/** The module specifiers a source file imports (TypeScript's scanner: imports, exports, import(), require()). */
const specifiersOf = (text: string): Array<string> =>
  ts.preProcessFile(text, true, true).importedFiles.map((reference) => reference.fileName)

const builtins = new Set(builtinModules)

/** The package a bare specifier names (`vitest/node` → `vitest`, `@effect/vitest/x` → `@effect/vitest`), else undefined. */
const packageOf = (specifier: string): string | undefined => {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.includes(":")) return undefined
  if (builtins.has(specifier)) return undefined
  const parts = specifier.split("/")
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!
  return builtins.has(name) ? undefined : name
}

/** Each package imported by `files`, with the files (and line numbers) that import it. */
const importsOf = (files: ReadonlyArray<string>): Map<string, Array<string>> => {
  const found = new Map<string, Array<string>>()
  for (const file of files) {
    const text = readFileSync(join(root, file), "utf8")
    for (const reference of ts.preProcessFile(text, true, true).importedFiles) {
      const name = packageOf(reference.fileName)
      if (name === undefined) continue
      const line = text.slice(0, reference.pos).split("\n").length
      found.set(name, [...(found.get(name) ?? []), `${relative(root, join(root, file))}:${line}`])
    }
  }
  return found
}

const declared = (sections: ReadonlyArray<"dependencies" | "devDependencies" | "peerDependencies">) =>
  new Set([pkg.name, ...sections.flatMap((section) => Object.keys(pkg[section] ?? {}))])

/** `name (file:line, …)` for each imported package not in `allowed`. */
const undeclared = (found: Map<string, Array<string>>, allowed: Set<string>) =>
  [...found].filter(([name]) => !allowed.has(name)).map(([name, where]) => `${name} (${where.join(", ")})`)

describe("imported packages", () => {
  it("the scanner finds each form of import, and names the package of a specifier", () => {
    const text = [
      `import a from "pkg-a"`,
      `import type { B } from "@scope/pkg-b/sub/path"`,
      `import {\n  c,\n  type D\n} from "pkg-c/sub"`,
      `import "pkg-side-effect"`,
      `export { e } from "pkg-e"`,
      `export * from "./relative.js"`,
      `const f = await import("pkg-f")`,
      `const g = require("pkg-g")`,
      `import { readFileSync } from "node:fs"`,
      `import path from "path"`,
      `// import h from "in-a-comment"`,
      'const code = `import i from "in-a-template"`'
    ].join("\n")
    expect(specifiersOf(text).map((s) => packageOf(s) ?? `(${s})`)).toEqual([
      "pkg-a",
      "@scope/pkg-b",
      "pkg-c",
      "pkg-side-effect",
      "pkg-e",
      "(./relative.js)",
      "pkg-f",
      "pkg-g",
      "(node:fs)",
      "(path)"
    ])
    expect(packageOf("fs/promises")).toBeUndefined()
  })

  const files = [...DIRS.flatMap(filesUnder), ...ROOT_FILES]
  const found = importsOf(files)

  it("every package imported by src/, test/, bench/, scripts/, examples/ is declared in package.json", () => {
    // The scan did read the repository: the packages every part of it uses are there.
    for (const name of ["effect", "ioredis", "koa", "vitest", "@effect/vitest", "fast-check", "autocannon"]) expect([...found.keys()]).toContain(name)
    expect(undeclared(found, declared(["dependencies", "devDependencies", "peerDependencies"])), "imported but not declared").toEqual([])
  })

  it("what src/ imports is a dependency or a peer dependency (src/ ships; devDependencies are not installed for users)", () => {
    const fromSrc = importsOf(filesUnder("src"))
    expect([...fromSrc.keys()]).toContain("effect")
    expect(undeclared(fromSrc, declared(["dependencies", "peerDependencies"])), "src/ imports these from devDependencies only").toEqual([])
  })
})
