// @ts-check
// The store's spans exported with OpenTelemetry: NodeSdk.layer gives Effect an OpenTelemetry
// tracer, and every SessionStore.* operation becomes a span with the store's attributes
// (never a session id or a value). In-memory exporter here; in production, a
// BatchSpanProcessor over an OTLP exporter (@opentelemetry/exporter-trace-otlp-http).
//   REDIS_URL=redis://127.0.0.1:6379 node examples/opentelemetry.mjs
import { fileURLToPath } from "node:url"
import { NodeSdk } from "@effect/opentelemetry"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import { RedisClient, SessionStore } from "koa-redis-session-sets"

export const exporter = new InMemorySpanExporter()
const TracingLive = NodeSdk.layer(() => ({
  resource: { serviceName: "myapp" },
  spanProcessor: new SimpleSpanProcessor(exporter)
}))

const StoreLive = SessionStore.layer({ namespace: "myapp", references: ["user_id"] }).pipe(
  Layer.provide(RedisClient.layer(process.env.REDIS_URL ?? "redis://127.0.0.1:6379"))
)

// Three store operations under one span of the app's: set, get, delete.
export const signInAndOut = (/** @type {number} */ userId) =>
  Effect.gen(function* () {
    const store = yield* SessionStore
    const id = yield* store.createSessionId
    yield* store.set(id, { user_id: userId })
    yield* store.get(id)
    yield* store.delete(id)
    return id
  }).pipe(Effect.withSpan("sign-in-and-out"))

// The spans the exporter holds once the work is done (read before the layer shuts the SDK down).
export const main = Effect.gen(function* () {
  const id = yield* signInAndOut(42)
  return { id, spans: [...exporter.getFinishedSpans()] }
}).pipe(Effect.provide(StoreLive), Effect.provide(TracingLive))

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { spans } = await Effect.runPromise(main)
  for (const span of spans) console.log(span.name, span.attributes)
  // SessionStore.set { 'db.system.name': 'redis', 'server.address': '127.0.0.1', 'server.port': 6379,
  //   'session_store.prefix': 'koa-redis-session-sets:myapp', 'session_store.references.count': 1,
  //   'db.operation.name': 'SessionStore.set' }, then SessionStore.get, SessionStore.delete, sign-in-and-out
}
