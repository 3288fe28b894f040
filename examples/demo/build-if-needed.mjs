// Builds dist/ (the demo imports the package as an app would, which resolves to dist/)
// when it is missing or older than a file under src/, so `npm run demo` works on a fresh
// clone after `npm ci` and after an edit, and skips the build otherwise.
import { spawnSync } from "node:child_process"
import { readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))
const built = ["dist/index.js", "dist/index.cjs"].map((file) => join(root, file))

const mtime = (file) => {
  try {
    return statSync(file).mtimeMs
  } catch {
    return undefined
  }
}

const newestSource = Math.max(
  ...readdirSync(join(root, "src"), { recursive: true }).map((file) => mtime(join(root, "src", String(file))) ?? 0),
  mtime(join(root, "package.json")) ?? 0
)
const oldestBuilt = Math.min(...built.map((file) => mtime(file) ?? -1))

if (oldestBuilt < newestSource) {
  console.log(oldestBuilt < 0 ? "Building dist/ (first run)…" : "Rebuilding dist/ (src/ changed)…")
  const result = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] })
  if (result.status !== 0) {
    console.error("npm run build failed")
    process.exit(result.status ?? 1)
  }
}
