import { defineConfig } from "tsup"

export default defineConfig({
  entry: { index: "src/index.ts", http: "src/Http.ts" },
  format: ["esm", "cjs"],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  external: ["effect", "ioredis", "koa", "csrf", "@effect/platform"]
})
