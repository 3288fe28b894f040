// Post-build fixes of tsup's output.
//
// 1. tsup's CommonJS output exposes the default export as `require(pkg).default`.
//    v3 apps call `require('koa-redis-session-sets')(app, options)`, so the CJS entry
//    must *be* the factory, with the named exports as its properties.
// 2. Both .d.ts files end with `declare module "koa" { interface DefaultContext { session: KoaSession } }`,
//    so that with @types/koa installed `ctx.session` is a KoaSession. But Koa's types are optional
//    (koa is an optional peer, @types/koa no dependency). Where "koa" resolves to nothing, TypeScript
//    drops an augmentation in a .d.ts silently; where it resolves to the untyped JavaScript package
//    (koa installed, @types/koa not), a consumer with `skipLibCheck: false` gets TS2665 "Invalid
//    module name in augmentation". A `// @ts-ignore` on the line before silences exactly that
//    error; with @types/koa the augmentation still applies. test/package.test.ts checks both.
import { readFileSync, writeFileSync } from "node:fs"

const ignoreMarker = "// @ts-ignore -- koa-redis-session-sets: @types/koa is optional (see scripts/fix-cjs.mjs)"
for (const file of ["index.d.ts", "index.d.cts"]) {
  const path = new URL(`../dist/${file}`, import.meta.url)
  const text = readFileSync(path, "utf8")
  const augmentation = /^declare module ["']koa["'] \{$/gm
  const found = [...text.matchAll(augmentation)]
  if (found.length !== 1) throw new Error(`fix-cjs: expected one \`declare module "koa"\` in dist/${file}, found ${found.length}`)
  if (!text.includes(ignoreMarker)) writeFileSync(path, text.replace(augmentation, (line) => `${ignoreMarker}\n${line}`))
}

const cjsPath = new URL("../dist/index.cjs", import.meta.url)
const marker = "// koa-redis-session-sets: require() returns the factory"
let cjs = readFileSync(cjsPath, "utf8")
if (!cjs.includes(marker)) {
  cjs += `\n${marker}\nmodule.exports = Object.assign(module.exports.default, module.exports);\n`
  writeFileSync(cjsPath, cjs)
}

// Types: `export = factory` with a merged namespace carrying the named exports.
const dtsPath = new URL("../dist/index.d.cts", import.meta.url)
let dts = readFileSync(dtsPath, "utf8")
if (!dts.includes("export = koaRedisSessionSets")) {
  const exportLine = /^export \{([^}]*)\};\s*$/m
  const match = exportLine.exec(dts)
  if (!match) throw new Error("fix-cjs: no export list found in dist/index.d.cts")
  const names = match[1]
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
  const aliases = []
  const members = []
  // With several entries (`.` and `./http`), tsup moves shared declarations into a chunk
  // (`./Session-<hash>.cjs`): what it exports there says which names are types only, and
  // its `declare class`es are values and types at once.
  const chunkInfo = new Map() // local name in index.d.cts -> { isType, isClass }
  const chunkLine = /^(import|export) \{([^}]*)\} from '(\.\/[^']+\.cjs)';\s*$/gm
  const reexports = []
  for (const [line, kind, list, from] of [...dts.matchAll(chunkLine)]) {
    const chunk = readFileSync(new URL(`../dist/${from.slice(2).replace(/\.cjs$/, ".d.cts")}`, import.meta.url), "utf8")
    const chunkExports = /^export \{([^}]*)\};\s*$/m.exec(chunk)
    if (!chunkExports) throw new Error(`fix-cjs: no export list found in ${from}`)
    const byAlias = new Map()
    for (const entry of chunkExports[1].split(",").map((e) => e.trim()).filter(Boolean)) {
      const [original, alias = original] = entry.split(/\s+as\s+/).map((e) => e.trim())
      const isType = original.startsWith("type ")
      const name = isType ? original.slice(5) : original
      byAlias.set(alias, { isType, isClass: new RegExp(`declare class ${name}\\b`).test(chunk) })
    }
    const renamed = []
    for (const entry of list.split(",").map((e) => e.trim()).filter(Boolean)) {
      const [alias, local = alias] = entry.split(/\s+as\s+/).map((e) => e.trim())
      const info = byAlias.get(alias)
      if (!info) throw new Error(`fix-cjs: ${alias} is not exported by ${from}`)
      if (kind === "import") chunkInfo.set(local, info)
      else {
        // A re-export cannot stay next to `export =`: imported under a fresh name, then a namespace member.
        chunkInfo.set(`__${local}`, info)
        renamed.push(`${alias} as __${local}`)
        reexports.push([`__${local}`, local])
      }
    }
    if (kind === "export") dts = dts.replace(line, `import { ${renamed.join(", ")} } from '${from}';\n`)
  }
  const addMember = (localName, exportedName, isType, isClass) => {
    // A value merged with a namespace of types (and an interface), as SessionSchema is: an
    // import alias carries every meaning, where `declare const` would keep the value only.
    if (!isType && new RegExp(`^declare namespace ${localName} \\{`, "m").test(dts)) {
      aliases.push(`import _${exportedName} = ${localName};`)
      members.push(`export { _${exportedName} as ${exportedName} };`)
      return
    }
    if (isType) aliases.push(`type _${exportedName} = ${localName};`)
    else {
      aliases.push(`declare const _${exportedName}: typeof ${localName};`)
      if (isClass) aliases.push(`type _${exportedName} = ${localName};`)
    }
    members.push(isType ? `export type ${exportedName} = _${exportedName};` : `export { _${exportedName} as ${exportedName} };`)
  }
  for (const [local, exported] of reexports) {
    const info = chunkInfo.get(local)
    addMember(local, exported, info.isType, info.isClass)
  }
  for (const entry of names) {
    const [local, exported = local] = entry.split(/\s+as\s+/).map((s) => s.trim())
    if (exported === "default") continue
    const isType = local.startsWith("type ")
    const localName = isType ? local.slice(5) : local
    const exportedName = exported.startsWith("type ") ? exported.slice(5) : exported
    if (localName === "koaRedisSessionSets") continue
    // A fresh alias avoids clashing with the namespace member of the same name.
    // A class is a type too (errors are matched with instanceof, tags are used as types).
    const fromChunk = chunkInfo.get(localName)
    if (fromChunk) addMember(localName, exportedName, isType || fromChunk.isType, fromChunk.isClass)
    else addMember(localName, exportedName, isType, new RegExp(`declare class ${localName}\\b`).test(dts))
  }
  dts = dts.replace(exportLine, "")
  dts += `\n${aliases.join("\n")}\ndeclare namespace koaRedisSessionSets {\n  ${members.join("\n  ")}\n  export { koaRedisSessionSets as default };\n}\nexport = koaRedisSessionSets;\n`
  writeFileSync(dtsPath, dts)
}
