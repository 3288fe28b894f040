// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function,
// inclusive time per function, and self time per package. Frames in dist/ are
// mapped back to src/ through dist/*.js.map.
import { readFileSync, existsSync } from "node:fs"
import { SourceMap } from "node:module"
import { fileURLToPath } from "node:url"
import path from "node:path"

const sourceMaps = new Map()
const sourceMapOf = (file) => {
  if (!sourceMaps.has(file)) {
    const mapFile = `${file}.map`
    sourceMaps.set(file, existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, "utf8"))) : null)
  }
  return sourceMaps.get(file)
}

const categoryOf = (url, name) => {
  if (url === "") {
    if (name === "(garbage collector)") return "gc"
    if (name === "(idle)") return "idle"
    if (name === "(program)") return "program (native, unattributed)"
    return "native"
  }
  if (url.startsWith("node:")) return "node core"
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)
  if (m) return m[1]
  if (url.includes("/dist/")) return "koa-redis-session-sets (dist)"
  if (url.includes("/bench/")) return "bench server"
  return url
}

const locationOf = (frame, root) => {
  const { url, lineNumber, columnNumber } = frame
  if (!url) return ""
  if (url.includes("/dist/") && url.startsWith("file:") && !url.includes("/node_modules/")) {
    let file = fileURLToPath(url)
    // bench/run.mjs profiles a temporary copy of dist/; once it is gone, use the project's
    // dist/ (the run records the sha256 of the copy's index.js to check they are the same).
    if (!existsSync(`${file}.map`)) file = path.join(root, "dist", path.basename(file))
    const map = sourceMapOf(file)
    const entry = map?.findEntry(lineNumber, columnNumber)
    if (entry && entry.originalSource) {
      // Relative to the package root (the parent of dist/), wherever that copy lives.
      const source = path.relative(path.dirname(path.dirname(file)), path.resolve(path.dirname(file), entry.originalSource))
      return `${source}:${entry.originalLine + 1}`
    }
  }
  const short = url.replace(/^file:\/\//, "").replace(root + "/", "")
  return `${short.replace(/^.*node_modules\//, "")}:${lineNumber + 1}`
}

/** Returns { totalMs, byCategory, self, inclusive } from a .cpuprofile file. */
export const summarise = (file, root) => {
  const profile = JSON.parse(readFileSync(file, "utf8"))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const keyOf = (node) => {
    const f = node.callFrame
    return `${f.functionName || "(anonymous)"}\u0000${f.url}\u0000${f.lineNumber}\u0000${f.columnNumber}`
  }
  const info = new Map()
  const infoOf = (node) => {
    const key = keyOf(node)
    let i = info.get(key)
    if (!i) {
      const f = node.callFrame
      i = {
        name: f.functionName || "(anonymous)",
        category: categoryOf(f.url, f.functionName),
        location: locationOf(f, root),
        self: 0,
        inclusive: 0
      }
      info.set(key, i)
    }
    return i
  }
  let total = 0
  let idle = 0
  const { samples, timeDeltas } = profile
  // Startup (module loading, connecting) is not what we are after: start at the
  // first sample taken inside an HTTP request handler.
  const inRequest = new Map()
  // (Module evaluation of node:_http_server itself happens at startup, so match the request entry point.)
  const isRequestFrame = (node) => node.callFrame.functionName === "parserOnIncoming" && node.callFrame.url === "node:_http_server"
  const handlesRequest = (id) => {
    if (id === undefined) return false
    if (!inRequest.has(id)) inRequest.set(id, isRequestFrame(byId.get(id)) || handlesRequest(parent.get(id)))
    return inRequest.get(id)
  }
  let first = samples.findIndex((id) => handlesRequest(id))
  if (first < 0) first = 0
  for (let s = first; s < samples.length; s++) {
    const dt = (timeDeltas[s + 1] ?? timeDeltas[s] ?? 0) / 1000
    const node = byId.get(samples[s])
    const leaf = infoOf(node)
    leaf.self += dt
    total += dt
    if (leaf.name === "(idle)") idle += dt
    const seen = new Set()
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const i = infoOf(byId.get(id))
      if (!seen.has(i)) {
        seen.add(i)
        i.inclusive += dt
      }
    }
  }
  const busy = total - idle
  const categories = new Map()
  for (const i of info.values()) categories.set(i.category, (categories.get(i.category) ?? 0) + i.self)
  const pct = (ms) => (busy > 0 ? (100 * ms) / busy : 0)
  const rows = [...info.values()].filter((i) => i.name !== "(idle)" && i.name !== "(root)")
  return {
    totalMs: total,
    busyMs: busy,
    byCategory: [...categories.entries()]
      .filter(([c]) => c !== "idle")
      .map(([category, ms]) => ({ category, ms, pct: pct(ms) }))
      .sort((a, b) => b.ms - a.ms),
    self: rows
      .sort((a, b) => b.self - a.self)
      .slice(0, 30)
      .map((i) => ({ ...i, selfPct: pct(i.self), inclusivePct: pct(i.inclusive) })),
    // A few third-party entry points, inclusive, to read the library's costs against.
    landmarks: LANDMARKS.map(([label, name, where]) => {
      const hits = rows.filter((i) => i.name === name && i.location.includes(where))
      const inclusive = Math.max(0, ...hits.map((i) => i.inclusive))
      return { label, name, inclusive, inclusivePct: pct(inclusive) }
    }),
    library: rows
      .filter((i) => i.location.startsWith("src/"))
      .sort((a, b) => b.inclusive - a.inclusive)
      .slice(0, 25)
      .map((i) => ({ ...i, selfPct: pct(i.self), inclusivePct: pct(i.inclusive) }))
  }
}

const LANDMARKS = [
  ["Koa request handling (everything after the HTTP parser)", "handleRequest", "koa/lib/application"],
  ["cookie read (incl. signature check)", "Cookies.get", "cookies/index"],
  ["cookie signature check (keygrip + tsscmp)", "Keygrip.index", "keygrip/index"],
  ["cookie write", "Cookies.set", "cookies/index"],
  ["ioredis: sending a command (incl. socket write)", "sendCommand", "ioredis/built/Redis"],
  ["ioredis: handling a reply (decode, resolve)", "onReply", "ioredis/built/DataHandler"],
  ["Koa response (respond, incl. socket write)", "respond", "koa/lib/application"],
  ["Effect fiber run loop (FiberRuntime.runLoop)", "runLoop", "effect/"]
]

const f1 = (x) => x.toFixed(1)

/** Markdown for one summary. */
export const summaryMarkdown = (title, s, microsPerRequest) => {
  const us = (pct) => (microsPerRequest ? (pct * microsPerRequest) / 100 : NaN)
  const lines = [
    `### ${title}`,
    "",
    `Busy (non-idle) time: ${(s.busyMs / 1000).toFixed(2)} s of ${(s.totalMs / 1000).toFixed(2)} s sampled` +
      (microsPerRequest ? `; ${microsPerRequest.toFixed(0)} µs of server CPU per request.` : "."),
    ""
  ]
  lines.push("Self time by package:", "", "| package | self % | µs/req |", "| --- | ---: | ---: |")
  for (const c of s.byCategory.slice(0, 14)) lines.push(`| ${c.category} | ${f1(c.pct)} | ${f1(us(c.pct))} |`)
  lines.push("", "Top functions by self time:", "", "| function | where | self % | incl. % |", "| --- | --- | ---: | ---: |")
  for (const r of s.self.slice(0, 25)) lines.push(`| \`${r.name}\` | ${r.location || r.category} | ${f1(r.selfPct)} | ${f1(r.inclusivePct)} |`)
  lines.push("", "Landmarks (inclusive time):", "", "| what | function | incl. % | µs/req |", "| --- | --- | ---: | ---: |")
  for (const l of s.landmarks) lines.push(`| ${l.label} | \`${l.name}\` | ${f1(l.inclusivePct)} | ${f1(us(l.inclusivePct))} |`)
  lines.push("", "Library functions (src/, mapped from dist/) by inclusive time:", "", "| function | where | self % | incl. % |", "| --- | --- | ---: | ---: |")
  for (const r of s.library.slice(0, 20)) lines.push(`| \`${r.name}\` | ${r.location} | ${f1(r.selfPct)} | ${f1(r.inclusivePct)} |`)
  lines.push("")
  return lines.join("\n")
}

/** Summary, markdown and a short console text for one profile file. */
/** `title` names the stack and flow, e.g. "lib-unsigned, READ flow". */
export const summariseProfile = (title, file, root, microsPerRequest) => {
  const summary = summarise(file, root)
  summary.microsPerRequest = microsPerRequest
  const text = [
    `${title}: top self time (% of busy ${(summary.busyMs / 1000).toFixed(1)} s)`,
    ...summary.byCategory
      .slice(0, 8)
      .map((c) => `  ${f1(c.pct).padStart(5)} %  ${microsPerRequest ? `${f1((c.pct * microsPerRequest) / 100).padStart(6)} µs/req  ` : ""}${c.category}`),
    "  --",
    ...summary.self.slice(0, 15).map((r) => `  ${f1(r.selfPct).padStart(5)} %  ${r.name}  ${r.location || r.category}`),
    "  -- library (src/) by inclusive time",
    ...summary.library.slice(0, 10).map((r) => `  ${f1(r.inclusivePct).padStart(5)} %  ${r.name}  ${r.location}`)
  ].join("\n")
  return { name: title, summary, markdown: summaryMarkdown(title, summary, microsPerRequest), text }
}
