// (b') Raw ioredis in Koa, the stricter floor of issue 15: READ is one HGETALL of a fixed
// key (the first session logged in), with no cookie work at all. What a session read
// costs beyond it is the cookie (and its signature) and the library.
import { Redis } from "ioredis"
import Koa from "koa"
import { nextWriteUser, PREFIX, rawLogin, REDIS_URL, serve } from "./common.mjs"

const client = new Redis(REDIS_URL)
client.on("error", () => {})
const app = new Koa()
let fixedKey

app.use(async (ctx) => {
  switch (ctx.path) {
    case "/read":
      ctx.body = fixedKey === undefined ? {} : await client.hgetall(fixedKey)
      return
    case "/write":
      // Not measured (READ only); answers as the other stacks do, for the runner's checks.
      if (fixedKey !== undefined) await client.hset(fixedKey, "user_id", String(nextWriteUser()))
      ctx.body = "ok"
      return
    case "/login": {
      const { id } = await rawLogin(client)
      fixedKey ??= `${PREFIX}:{${id}}`
      ctx.cookies.set("session-id", id, { signed: false, httpOnly: true, sameSite: "lax", path: "/" })
      ctx.body = "ok"
      return
    }
  }
})

serve(app.callback(), () => client.quit())
