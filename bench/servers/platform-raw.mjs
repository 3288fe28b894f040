// (e) Raw ioredis in an @effect/platform handler: the ceiling of the ./http middleware
// (see platform-apps.mjs). Served by the same node:http listener as the middleware's
// stack (SessionHttp.toNodeListener).
import { Redis } from "ioredis"
import { importHttp } from "../lib/library.mjs"
import { REDIS_URL, serve } from "./common.mjs"
import { rawHandler } from "./platform-apps.mjs"

const { SessionHttp } = await importHttp()
const client = new Redis(REDIS_URL)
client.on("error", () => {})
const { handler } = await rawHandler(client)
serve(SessionHttp.toNodeListener(handler), () => client.quit())
