// (f) This library's ./http middleware in an @effect/platform app (signed: false, as its
// ceiling platform-raw.mjs), over a SessionStore on its own ioredis client.
import { HttpApp, HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Layer } from "effect"
import { Redis } from "ioredis"
import { importHttp, importLibrary } from "../lib/library.mjs"
import { nextLoginUser, nextWriteUser, PREFIX, PROFILE, REDIS_URL, serve } from "./common.mjs"

const { RedisClient, Session, SessionStore } = await importLibrary()
const { SessionHttp } = await importHttp()
const client = new Redis(REDIS_URL)
client.on("error", () => {})

const app = HttpRouter.empty.pipe(
  HttpRouter.get("/read", Effect.map(Effect.flatMap(Session, (session) => session.get()), (data) => HttpServerResponse.unsafeJson(data))),
  HttpRouter.get(
    "/write",
    Effect.as(
      Effect.flatMap(Session, (session) => session.set({ user_id: nextWriteUser() })),
      HttpServerResponse.text("ok")
    )
  ),
  HttpRouter.get(
    "/login",
    Effect.as(
      Effect.flatMap(Session, (session) => session.set({ user_id: nextLoginUser(), ...PROFILE })),
      HttpServerResponse.text("ok")
    )
  ),
  SessionHttp.middleware({ signed: false })
)

const store = SessionStore.layer({ prefix: PREFIX, references: { user_id: {} } }).pipe(Layer.provide(RedisClient.layerFromClient(client)))
const { handler, dispose } = HttpApp.toWebHandlerLayer(app, store)
serve(SessionHttp.toNodeListener(handler), async () => {
  await dispose()
  await client.quit()
})
