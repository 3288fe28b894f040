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
  for (const entry of names) {
    const [local, exported = local] = entry.split(/\s+as\s+/).map((s) => s.trim())
    if (exported === "default") continue
    const isType = local.startsWith("type ")
    const localName = isType ? local.slice(5) : local
    const exportedName = exported.startsWith("type ") ? exported.slice(5) : exported
    if (localName === "koaRedisSessionSets") continue
    // A fresh alias avoids clashing with the namespace member of the same name.
    const isClass = new RegExp(`declare class ${localName}\\b`).test(dts)
    if (isType) aliases.push(`type _${exportedName} = ${localName};`)
    else {
      aliases.push(`declare const _${exportedName}: typeof ${localName};`)
      // A class is a type too (errors are matched with instanceof, tags are used as types).
      if (isClass) aliases.push(`type _${exportedName} = ${localName};`)
    }
    members.push(isType ? `export type ${exportedName} = _${exportedName};` : `export { _${exportedName} as ${exportedName} };`)
  }
  dts = dts.replace(exportLine, "")
  dts += `\n${aliases.join("\n")}\ndeclare namespace koaRedisSessionSets {\n  ${members.join("\n  ")}\n  export { koaRedisSessionSets as default };\n}\nexport = koaRedisSessionSets;\n`
  writeFileSync(dtsPath, dts)
}
