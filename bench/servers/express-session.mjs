// (f) express-session + connect-redis (node-redis client), Express 5.
// The recommended options: resave: false, saveUninitialized: false. connect-redis
// keeps its default touch, so express-session sends EXPIRE after a READ that did not
// modify the session (GET + EXPIRE); a WRITE is one SET of the whole JSON session.
// express-session cookies are always signed (`secret`).
import { RedisStore } from "connect-redis"
import express from "express"
import session from "express-session"
import { createClient } from "redis"
import { KEYS, MAX_AGE, nextLoginUser, nextWriteUser, PROFILE, REDIS_URL, serve } from "./common.mjs"

const client = createClient({ url: REDIS_URL })
client.on("error", () => {})
await client.connect()

const app = express()
app.disable("x-powered-by")
app.disable("etag")
app.use(
  session({
    store: new RedisStore({ client, prefix: "sess:" }),
    secret: KEYS[0],
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: MAX_AGE, httpOnly: true, sameSite: "lax" }
  })
)

app.get("/read", (req, res) => {
  const { cookie: _cookie, ...data } = req.session
  res.json(data)
})
app.get("/write", (req, res) => {
  req.session.user_id = nextWriteUser()
  res.send("ok")
})
app.get("/login", (req, res) => {
  Object.assign(req.session, { user_id: nextLoginUser(), ...PROFILE })
  res.send("ok")
})

serve(app, () => client.quit())
