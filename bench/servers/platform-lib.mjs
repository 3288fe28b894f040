// (f) This library's ./http middleware in an @effect/platform app (signed: false, as its
// ceiling platform-raw.mjs), over a SessionStore on its own ioredis client (see platform-apps.mjs).
import { Redis } from "ioredis"
import { importHttp } from "../lib/library.mjs"
import { REDIS_URL, serve } from "./common.mjs"
import { libHandler } from "./platform-apps.mjs"

const { SessionHttp } = await importHttp()
const client = new Redis(REDIS_URL)
client.on("error", () => {})
const { handler, dispose } = libHandler(SessionHttp, client)
serve(SessionHttp.toNodeListener(handler), async () => {
  await dispose()
  await client.quit()
})
