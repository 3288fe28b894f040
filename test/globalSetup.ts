import type { TestProject } from "vitest/node"
import { hasRedisServer, INSTALL_HINT, startRedis, type RunningRedis } from "./redisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
  }
}

let server: RunningRedis | undefined

export async function setup(project: TestProject) {
  const fromUser = process.env["REDIS_URL"]
  if (fromUser) {
    project.provide("redisUrl", fromUser)
    return
  }
  if (!hasRedisServer()) throw new Error(INSTALL_HINT)
  server = await startRedis()
  const pid = server.process.pid
  // Fallback if vitest dies before teardown: stop only the server we started.
  process.once("exit", () => {
    if (pid !== undefined && server?.process.exitCode === null) process.kill(pid, "SIGKILL")
  })
  project.provide("redisUrl", server.url)
}

export async function teardown() {
  await server?.stop()
}
