// The package under test, as built: bench/run.mjs passes its per-run snapshot of dist/
// as BENCH_DIST; run on their own, the scripts use the project's dist/.
import { pathToFileURL } from "node:url"

export const importLibrary = () =>
  import(process.env.BENCH_DIST ? pathToFileURL(process.env.BENCH_DIST).href : new URL("../../dist/index.js", import.meta.url).href)

/** The `./http` entry of the same build. */
export const importHttp = () =>
  import(process.env.BENCH_DIST ? pathToFileURL(process.env.BENCH_DIST.replace(/index\.js$/, "http.js")).href : new URL("../../dist/http.js", import.meta.url).href)
