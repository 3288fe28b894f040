// Console table, markdown (README-ready) and a hand-written SVG bar chart.
export const FLOWS = ["read", "write"]

const int = (n) => (n === undefined || n === null || Number.isNaN(n) ? "–" : Math.round(n).toLocaleString("en-US"))
const ms = (n) => (n === undefined || n === null || Number.isNaN(n) ? "–" : Number(n).toFixed(n < 10 ? 2 : 1))
const ratio = (n) => (n === undefined || n === null || Number.isNaN(n) ? "–" : `${n.toFixed(2)}×`)

export const median = (values) => {
  const xs = values.filter((v) => typeof v === "number" && !Number.isNaN(v)).sort((a, b) => a - b)
  if (xs.length === 0) return NaN
  const mid = Math.floor(xs.length / 2)
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2
}

const pad = (s, n, right = false) => (right ? String(s).padStart(n) : String(s).padEnd(n))

/** The HTTP table as plain text. */
export const httpTable = (http) => {
  const flows = http.flows
  const header = [pad("stack", 26)]
  for (const flow of flows) {
    header.push(pad(`${flow.toUpperCase()} req/s`, 12, true), pad("p99 ms", 7, true), pad("× raw", 6, true), pad("µs/req", 7, true))
  }
  const lines = [header.join("  "), "-".repeat(header.join("  ").length)]
  for (const stack of http.stacks) {
    const row = [pad(stack.name, 26)]
    for (const flow of flows) {
      const r = http.results[stack.name]?.[flow]
      row.push(pad(int(r?.rps), 12, true), pad(ms(r?.p99), 7, true), pad(ratio(r?.ratio), 6, true), pad(int(r?.serverMicros), 7, true))
    }
    lines.push(row.join("  "))
  }
  lines.push("", "µs/req: the server process's CPU time per request (user + system) over the measured window.")
  return lines.join("\n")
}

/** Checks the targets of issue 5 (reported, never asserted). */
export const targetChecks = (http) => {
  const get = (stack, flow) => http.results[stack]?.[flow]
  const checks = []
  const ratioCheck = (stack, flow, min, label) => {
    const r = get(stack, flow)
    if (r?.ratio === undefined) return
    checks.push({ target: label, value: `${r.ratio.toFixed(2)}× raw`, met: r.ratio >= min })
  }
  ratioCheck("lib-unsigned", "read", 0.95, "signed: false, READ ≥ 0.95 × raw ioredis")
  ratioCheck("lib-unsigned", "write", 0.9, "signed: false, WRITE ≥ 0.90 × raw ioredis")
  ratioCheck("lib-signed", "read", 0.85, "signed (default), READ ≥ 0.85 × raw ioredis")
  // One stack against another in the same run: the median over rounds of their req/s in
  // that round (measured minutes apart at most, so a stretch of slow host CPU moves both),
  // or of their median req/s when the rounds do not pair up.
  const against = (stack, other, flow, min, label) => {
    const a = get(stack, flow)
    const b = get(other, flow)
    if (!a || !b || Number.isNaN(a.rps) || Number.isNaN(b.rps)) return
    const byRound = new Map((b.rounds ?? []).map((r) => [r.round, r.rps]))
    const paired = (a.rounds ?? []).filter((r) => byRound.get(r.round) > 0).map((r) => r.rps / byRound.get(r.round))
    const ratio = paired.length > 0 ? median(paired) : a.rps / b.rps
    const how = paired.length > 0 ? `median of ${paired.length} rounds: ${paired.map((x) => x.toFixed(2)).join(", ")}` : "of median req/s"
    checks.push({ target: label, value: `${int(a.rps)} vs ${int(b.rps)} req/s; ${ratio.toFixed(2)}× (${how})`, met: ratio >= min })
  }
  // The ./http middleware against raw ioredis in the same @effect/platform handler.
  for (const [flow, min] of [["read", 0.9], ["write", 0.85]])
    against("platform-lib", "platform-raw", flow, min, `./http middleware, ${flow.toUpperCase()} ≥ ${min.toFixed(2)} × raw ioredis in @effect/platform`)
  // Issue 13: the account controls against the same stack without them.
  against("lib-rolling", "lib-unsigned", "read", 0.95, "rolling: true, READ within 5 % of READ without it")
  against("lib-capped", "lib-unsigned", "write", 0.9, "maxSessions + track, WRITE within 10 % of WRITE without them")
  // Issue 15: the library on a Redis Cluster against raw ioredis `Cluster` doing the equivalent commands.
  against("cluster-lib", "cluster-raw", "read", 0.9, "Redis Cluster, READ ≥ 0.90 × raw ioredis Cluster")
  against("cluster-lib", "cluster-raw", "write", 0.6, "Redis Cluster, WRITE ≥ 0.60 × raw ioredis Cluster")
  // Issue 15: run(ctx, effect) at Promise speed, the cookie read against the stricter floor
  // (one HGETALL of a fixed key, no cookie), and signed WRITE against unsigned WRITE.
  ratioCheck("lib-effect-unsigned", "read", 0.85, "SessionMiddleware.run, READ ≥ 0.85 × raw ioredis")
  ratioCheck("lib-effect-unsigned", "write", 0.85, "SessionMiddleware.run, WRITE ≥ 0.85 × raw ioredis")
  against("lib-unsigned", "ioredis-fixed", "read", 0.9, "signed: false, READ ≥ 0.90 × one HGETALL of a fixed key (no cookie)")
  against("lib-signed", "ioredis-fixed", "read", 0.85, "signed (default), READ ≥ 0.85 × one HGETALL of a fixed key (no cookie)")
  against("lib-signed", "lib-unsigned", "write", 0.95, "signed (default) WRITE ≥ 0.95 × signed: false WRITE")
  const ahead = (lib, peer, flow) => {
    const a = get(lib, flow)
    const b = get(peer, flow)
    if (!a || !b || Number.isNaN(a.rps) || Number.isNaN(b.rps)) return
    checks.push({
      target: `${lib} ahead of ${peer}, ${flow.toUpperCase()}`,
      value: `${int(a.rps)} vs ${int(b.rps)} req/s (${(a.rps / b.rps).toFixed(2)}×)`,
      met: a.rps > b.rps
    })
  }
  for (const flow of http.flows) {
    ahead("lib-unsigned", "koa-session-unsigned", flow)
    ahead("lib-unsigned", "express-session", flow)
    ahead("lib-signed", "koa-session-signed", flow)
    ahead("lib-signed", "express-session", flow)
  }
  return checks
}

// A live heap that grows by no more than this from the smallest size to the largest is flat.
const FLAT_BYTES = 2 ** 20

/**
 * Issue 15's scale targets for one operation's rows, smallest size first (reported, never
 * asserted): time linear (no step's time grows more than 1.25× faster than its sessions;
 * slower is a fixed cost weighing on the smaller size), judged on wall time and on CPU
 * time (the client's and redis-server's, which a busy machine moves less), and memory flat
 * (the peak live heap Δ grows by at most 1 MiB from the smallest size to the largest).
 */
export const scaleSummary = (results) => {
  if (results.length < 2) return undefined
  const cpuOf = (r) => (r.cpuMs === undefined ? NaN : r.cpuMs + r.redisCpuMs)
  const steps = results.slice(1).map((b, i) => {
    const a = results[i]
    return { from: a.sessions, to: b.sessions, sessions: b.sessions / a.sessions, time: b.ms / a.ms, cpu: cpuOf(b) / cpuOf(a) }
  })
  const linear = steps.every((s) => s.time <= 1.25 * s.sessions)
  const cpuLinear = steps.every((s) => s.cpu <= 1.25 * s.sessions)
  const live = results.map((r) => r.liveHeapPeak - r.liveHeapBaseline)
  const growth = live.at(-1) - live[0]
  const flat = growth <= FLAT_BYTES
  const [first, last] = [results[0], results.at(-1)]
  const hasCpu = steps.every((s) => !Number.isNaN(s.cpu))
  const stepText = steps
    .map((s) => `${int(s.from)} → ${int(s.to)}: ${int(s.sessions)}× the sessions, ${s.time.toFixed(1)}× the time${hasCpu ? ` (${s.cpu.toFixed(1)}× the CPU)` : ""}`)
    .join("; ")
  const perSession = (f) => results.map((r) => ((f(r) * 1000) / r.sessions).toFixed(1)).join(", ")
  const verdict = (ok) => (ok ? "linear" : "**not linear**")
  const text = [
    `Time ${verdict(linear)}${hasCpu ? `, CPU time (client + Redis) ${verdict(cpuLinear)}` : ""}: ${stepText} ` +
      `(per session ${perSession((r) => r.ms)} µs${hasCpu ? `; CPU ${perSession(cpuOf)} µs` : ""}).`,
    `Memory ${flat ? "flat" : "**not flat**"}: peak live heap Δ ${live.map((b) => mib(b).replace(" MiB", "")).join(", ")} MiB, ` +
      `${growth < 0 && mib(-growth) !== mib(0) ? "−" : "+"}${mib(Math.abs(growth))} from ${int(first.sessions)} to ${int(last.sessions)} sessions (flat: at most +1 MiB).`
  ].join(" ")
  return { steps, linear, cpuLinear: hasCpu ? cpuLinear : undefined, live, growth, flat, text }
}

export const machineLine = (m) =>
  `${m.cpu}, ${m.cores} cores, ${Math.round(m.memoryGiB)} GiB RAM, ${m.os}, Node ${m.node}, Redis ${m.redis}`

/** README-ready markdown of everything measured in this run. */
export const markdown = (all) => {
  const { machine, http, revoke, list, store, options } = all
  const out = ["## Benchmarks", ""]
  out.push(`Machine: ${machineLine(machine)}.`)
  out.push(
    `Run on ${all.date.slice(0, 10)} at commit \`${all.git.commit.slice(0, 10)}\`${all.git.dirty ? " (with uncommitted changes in src/)" : ""} with \`npm run bench${options.argv.length ? " -- " + options.argv.join(" ") : ""}\`.`,
    options.pinned
      ? `Everything runs on this machine over 127.0.0.1: the server under test pinned to CPU ${options.pinned.server}, redis-server and autocannon sharing CPU ${options.pinned.others}. Compare ratios within one run rather than absolute numbers across machines.`
      : "Everything (redis-server, the server under test, autocannon) shares the same cores over 127.0.0.1, so compare ratios within one run rather than absolute numbers across machines.",
    ""
  )
  if (http) {
    out.push(
      "### HTTP",
      "",
      `autocannon, ${http.options.connections} connections (one session per connection), ${http.options.warmup} s warm-up then ${http.options.duration} s measured, ${http.options.rounds} round(s). Raw ioredis is measured first and again after every 3 other stacks; "× raw" is the median over rounds of the stack's req/s ÷ the mean of the raw measurements just before and after it, over the rounds in which all three ran at full speed (by the speed probe below; all rounds if none did). req/s, p99 and CPU are medians over rounds (for raw ioredis, over all its measurements).`,
      "READ: the handler reads the whole session (6 fields) and responds with it as JSON. WRITE: the handler sets `user_id`, a referenced field, to a new value.",
      "CPU µs/req: the server process's own CPU time (user + system) per request over the measured window — less sensitive than req/s to the three processes sharing the cores.",
      ""
    )
    const head = ["| stack |"]
    const rule = ["| --- |"]
    for (const flow of http.flows) {
      const F = flow.toUpperCase()
      head.push(` ${F} req/s | ${F} p99 ms | ${F} × raw | ${F} CPU µs/req |`)
      rule.push(" ---: | ---: | ---: | ---: |")
    }
    out.push(head.join(""), rule.join(""))
    for (const stack of http.stacks) {
      const row = [`| ${stack.label} |`]
      for (const flow of http.flows) {
        const r = http.results[stack.name]?.[flow]
        row.push(` ${int(r?.rps)} | ${ms(r?.p99)} | ${ratio(r?.ratio)} | ${int(r?.serverMicros)} |`)
      }
      out.push(row.join(""))
    }
    const ceilings = http.stacks.filter((st) => st.ceiling)
    if (ceilings.length) {
      out.push("", ceilings.map((st) => `\`${st.name}\`: "× raw" is over \`${st.ceiling}\` measured in the same round, not over raw ioredis.`).join(" "))
    }
    const noisy = Math.max(...http.stacks.flatMap((st) => http.flows.map((f) => http.results[st.name]?.[f]?.foreignMax ?? 0)))
    const slowest = Math.max(...http.stacks.flatMap((st) => http.flows.flatMap((f) => (http.results[st.name]?.[f]?.rounds ?? []).map((r) => r.cpu.slowdown ?? 1))))
    out.push(
      "",
      `Other processes on the machine used at most ${(100 * noisy).toFixed(0)} % of its CPU during any kept measurement, and the server's CPU was at most ${slowest.toFixed(2)}× slower than its fastest in the run ` +
        `(a fixed JavaScript probe timed in the server process before and after each window; this VM's host sometimes halves its speed for minutes, unseen from inside). ` +
        `A measurement above ${(100 * options.maxForeign).toFixed(0)} % or ${(options.maxSlowdown ?? 1.35).toFixed(2)}× is repeated up to ${options.retries} times.`,
      ""
    )
    const checks = targetChecks(http)
    if (checks.length) {
      out.push("Targets (reported, not asserted):", "", "| target | measured | met |", "| --- | --- | :---: |")
      for (const c of checks) out.push(`| ${c.target} | ${c.value} | ${c.met ? "yes" : "**no**"} |`)
      out.push("")
    }
    out.push("![req/s per stack](bench/results/chart.svg)", "")
  }
  if (revoke) {
    out.push(
      "### Revoke all sessions of one user",
      "",
      "`SessionMiddleware.store.deleteByReference(\"user_id\", X)` on one user holding N sessions (v3 key layout, written by a script per 5,000 sessions), each revoke in a fresh process; time is the median of the timing passes, peaks the largest. CPU is that pass's: the process's own, then redis-server's. Δ is over that process's idle baseline. \"Heap used\" includes garbage not yet collected (V8 lets the young generation grow while allocation is fast); \"live heap\" is a last pass on fresh data with a full GC before every sample (every 20 ms, or 4× the last GC's time if longer), i.e. what the revoke actually holds.",
      "",
      "| sessions | deleted | time | per session | CPU per session (client + Redis) | RSS baseline | peak RSS Δ | peak heap used Δ | peak live heap Δ | keys left |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for (const r of revoke.results) {
      out.push(
        `| ${int(r.sessions)} | ${int(r.deleted)} | ${int(r.ms)} ms | ${perSession(r, r.ms)} | ${cpuPerSession(r)} | ${mib(r.rssBaseline)} | ${mib(r.rssPeak - r.rssBaseline)} | ${mib(r.heapPeak - r.heapBaseline)} | ${mib(r.liveHeapPeak - r.liveHeapBaseline)} | ${r.keysLeft} |`
      )
    }
    const scale = scaleSummary(revoke.results)
    if (scale) out.push("", `${scale.text} Ids are read and deleted in SSCAN pages of 500.`)
    out.push("")
  }
  if (list) {
    out.push(
      "### The device list of one user",
      "",
      "`SessionMiddleware.store.listSessions(\"user_id\", X)` iterated to the end (an async iterable of SSCAN pages; nothing kept), on one user holding N sessions, each listing in a fresh process (the passes of a size share one population: a listing changes nothing); columns as for revoke-all.",
      "",
      "| sessions | listed | time | per session | CPU per session (client + Redis) | RSS baseline | peak RSS Δ | peak heap used Δ | peak live heap Δ |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for (const r of list.results) {
      out.push(
        `| ${int(r.sessions)} | ${int(r.deleted)} | ${int(r.ms)} ms | ${perSession(r, r.ms)} | ${cpuPerSession(r)} | ${mib(r.rssBaseline)} | ${mib(r.rssPeak - r.rssBaseline)} | ${mib(r.heapPeak - r.heapBaseline)} | ${mib(r.liveHeapPeak - r.liveHeapBaseline)} |`
      )
    }
    const scale = scaleSummary(list.results)
    if (scale) out.push("", scale.text)
    out.push("")
  }
  if (store) {
    out.push(
      "### Store level",
      "",
      `\`SessionStore\` (Effect) with ${store.options.concurrency} operations in flight for ${store.options.duration} s × ${store.options.rounds} round(s) (median), against \`redis-benchmark -c ${store.options.concurrency} -P 1\` on the same server.`,
      "",
      "| operation | library ops/s | plain ioredis ops/s (same commands) | redis-benchmark | redis-benchmark req/s | library ÷ redis-benchmark |",
      "| --- | ---: | ---: | --- | ---: | ---: |"
    )
    for (const r of store.results) {
      out.push(`| \`SessionStore.${r.operation}\` | ${int(r.ops)} | ${int(r.ioredis)} | ${r.against} | ${int(r.baseline)} | ${ratio(r.ratio)} |`)
    }
    out.push("")
    if (store.memory) {
      out.push(
        "`SessionStore.layerMemory`, same loop, against a plain `Map` doing the same work in `Effect.sync` (get: copy the fields out; set: write the fields and the expiry, move the id between the value sets of the index).",
        "",
        "| operation | layerMemory ops/s | plain Map ops/s | layerMemory ÷ Map |",
        "| --- | ---: | ---: | ---: |"
      )
      for (const r of store.memory) out.push(`| \`${r.operation}\` | ${int(r.ops)} | ${int(r.baseline)} | ${ratio(r.ratio)} |`)
      out.push("")
    }
  }
  return out.join("\n")
}

const perSession = (r, millis) => (millis === undefined ? "–" : `${((millis * 1000) / r.sessions).toFixed(1)} µs`)
// Older results have no CPU times.
const cpuPerSession = (r) => (r.cpuMs === undefined ? "–" : `${perSession(r, r.cpuMs)} + ${perSession(r, r.redisCpuMs)}`)

const mib = (bytes) => (bytes === undefined || Number.isNaN(bytes) ? "–" : `${(bytes / 1024 / 1024).toFixed(1)} MiB`)

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** A grouped horizontal bar chart of req/s per stack and flow. */
export const chartSvg = (http, machine) => {
  const flows = http.flows
  const colors = { read: "#2f6fb3", write: "#e07b24" }
  const left = 300
  const barArea = 480
  const right = 170
  const width = left + barArea + right
  const barH = 16
  const groupGap = 14
  const top = 58
  const groupH = flows.length * (barH + 3) + groupGap
  const height = top + http.stacks.length * groupH + 34
  const max = Math.max(1, ...http.stacks.flatMap((s) => flows.map((f) => http.results[s.name]?.[f]?.rps ?? 0)))
  const scale = barArea / max
  const parts = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="600">Session middleware req/s (median of ${http.options.rounds}, ${http.options.connections} connections)</text>`,
    `<text x="12" y="40" fill="#555">${esc(machineLine(machine))}</text>`
  )
  flows.forEach((flow, i) => {
    const x = width - right + 10
    parts.push(`<rect x="${x}" y="${12 + i * 18}" width="12" height="12" fill="${colors[flow]}"/>`, `<text x="${x + 18}" y="${22 + i * 18}">${flow.toUpperCase()}</text>`)
  })
  const raw = Object.fromEntries(flows.map((f) => [f, http.results["ioredis-raw"]?.[f]?.rps]))
  http.stacks.forEach((stack, g) => {
    const y0 = top + g * groupH
    const labelY = y0 + (flows.length * (barH + 3)) / 2 + 4
    parts.push(`<text x="${left - 8}" y="${labelY}" text-anchor="end">${esc(stack.label)}</text>`)
    flows.forEach((flow, i) => {
      const r = http.results[stack.name]?.[flow]
      const y = y0 + i * (barH + 3)
      const w = r && !Number.isNaN(r.rps) ? Math.max(1, r.rps * scale) : 0
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colors[flow]}"/>`)
      const label = r ? `${int(r.rps)}${r.ratio !== undefined ? `  (${r.ratio.toFixed(2)}× raw)` : ""}` : "–"
      parts.push(`<text x="${(left + w + 6).toFixed(1)}" y="${y + barH - 4}" fill="#222">${esc(label)}</text>`)
    })
  })
  flows.forEach((flow) => {
    if (!raw[flow]) return
    const x = (left + raw[flow] * scale).toFixed(1)
    parts.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${height - 28}" stroke="${colors[flow]}" stroke-dasharray="4 3" stroke-width="1"/>`)
  })
  parts.push(`<line x1="${left}" y1="${top - 6}" x2="${left}" y2="${height - 28}" stroke="#888"/>`)
  parts.push(`<text x="${left}" y="${height - 10}" fill="#555">0</text>`, `<text x="${left + barArea}" y="${height - 10}" fill="#555" text-anchor="end">${int(max)} req/s</text>`)
  parts.push(`<text x="${left + barArea / 2}" y="${height - 10}" fill="#555" text-anchor="middle">dashed: raw ioredis (ceiling)</text>`)
  parts.push("</svg>", "")
  return parts.join("\n")
}
