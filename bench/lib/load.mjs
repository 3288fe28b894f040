// The load generator: a child process (forked by bench/run.mjs) that drives one
// server with autocannon, programmatically. Each connection carries its own
// session cookie (set once per connection through `setupClient`).
// In:  { type: "run", url, path, cookies: string[], connections, duration, warmup }
// Out: { type: "measuring" } after the warm-up; it then waits for { type: "go" },
//      so the runner can snapshot CPU counters right at the start of the measured window.
//      { type: "result", result } | { type: "error", message }
import autocannon from "autocannon"

const fire = (options, seconds) =>
  new Promise((resolve, reject) => {
    let next = 0
    const instance = autocannon(
      {
        url: options.url + options.path,
        connections: options.connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
        headers: { cookie: options.cookies[0] ?? "" },
        setupClient: (client) => {
          const cookie = options.cookies[next++ % options.cookies.length]
          client.setHeaders({ cookie })
        }
      },
      (error, result) => (error ? reject(error) : resolve(result))
    )
    instance.on("error", reject)
  })

let go
process.on("message", async (message) => {
  if (message?.type === "go") return go?.()
  if (message?.type !== "run") return
  const options = message
  try {
    if (options.warmup > 0) await fire(options, options.warmup)
    await new Promise((resolve) => {
      go = resolve
      process.send({ type: "measuring" })
    })
    const cpu0 = process.cpuUsage()
    const r = await fire(options, options.duration)
    const cpu = process.cpuUsage(cpu0)
    process.send({
      type: "result",
      result: {
        rps: r.requests.average,
        total: r.requests.total,
        duration: r.duration,
        latency: { avg: r.latency.average, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
        errors: r.errors,
        timeouts: r.timeouts,
        non2xx: r.non2xx,
        loadCpuMicros: cpu.user + cpu.system
      }
    })
  } catch (error) {
    process.send({ type: "error", message: String(error?.stack ?? error) })
  }
})
