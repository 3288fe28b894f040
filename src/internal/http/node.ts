// A Node `http` request listener over a web handler (`(Request) => Promise<Response>`,
// what `HttpApp.toWebHandler` gives), for serving an @effect/platform app from Node
// without @effect/platform-node. Every Set-Cookie line reaches the wire as its own header.
import type { IncomingMessage, ServerResponse } from "node:http"
import { Readable } from "node:stream"

/**
 * @since 4.0.0
 * @category models
 */
export type WebHandler = (request: Request) => Promise<Response>

const toHeaders = (req: IncomingMessage): Headers => {
  const headers = new Headers()
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    // HTTP/2 pseudo-headers are not headers.
    if (name.startsWith(":")) continue
    headers.append(name, raw[i + 1]!)
  }
  return headers
}

/**
 * Turns a web handler into a `node:http` request listener. The request's URL is
 * `https:` on a TLS socket, else `http:`; the body streams in and out; a client that goes
 * away before the response is sent aborts the request's signal (which interrupts the
 * Effect handler). A handler that rejects answers 500.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http"
 * import { HttpApp } from "@effect/platform"
 * import { toNodeListener } from "koa-redis-session-sets/http"
 *
 * const { handler } = HttpApp.toWebHandlerLayer(app, layer)
 * createServer(toNodeListener(handler)).listen(3000)
 * ```
 *
 * @since 4.0.0
 * @category constructors
 */
export const toNodeListener = (handler: WebHandler) => (req: IncomingMessage, res: ServerResponse): void => {
  const controller = new AbortController()
  res.on("close", () => {
    if (!res.writableFinished) controller.abort()
  })
  const encrypted = (req.socket as { readonly encrypted?: boolean }).encrypted === true
  const host = req.headers.host ?? "localhost"
  const method = req.method ?? "GET"
  const hasBody = method !== "GET" && method !== "HEAD"
  let request: Request
  try {
    request = new Request(`${encrypted ? "https" : "http"}://${host}${req.url ?? "/"}`, {
      method,
      headers: toHeaders(req),
      signal: controller.signal,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: "half" } : {})
    } as RequestInit)
  } catch {
    res.statusCode = 400
    res.end()
    return
  }
  handler(request).then(
    (response) => send(res, response),
    () => {
      if (res.headersSent) res.destroy()
      else {
        res.statusCode = 500
        res.end()
      }
    }
  )
}

const send = (res: ServerResponse, response: Response): void => {
  res.statusCode = response.status
  if (response.statusText) res.statusMessage = response.statusText
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") res.setHeader(name, value)
  }
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) res.setHeader("set-cookie", cookies)
  if (response.body === null) {
    res.end()
    return
  }
  const body = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>)
  body.on("error", () => res.destroy())
  body.pipe(res)
}
