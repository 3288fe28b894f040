// One batch of an in-process A/B (koa-ab, platform-ab, effect-ops): a loop per input, all
// in flight at once, each making `perLoop` calls one after another.

/** This process's CPU time (user + system, µs) per call over the batch. */
export const cpuPerCall = async (inputs, perLoop, call) => {
  const cpu0 = process.cpuUsage()
  await Promise.all(
    inputs.map(async (input) => {
      for (let i = 0; i < perLoop; i++) await call(input)
    })
  )
  const cpu = process.cpuUsage(cpu0)
  return (cpu.user + cpu.system) / (perLoop * inputs.length)
}
