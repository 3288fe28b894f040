import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import type Koa from "koa"

export interface Served {
  readonly url: string
  close(): Promise<void>
}

/** Serves a Koa app on a free loopback port. */
export const serve = async (app: Koa): Promise<Served> => {
  const server: Server = createServer(app.callback())
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

export interface ParsedCookie {
  readonly name: string
  readonly value: string
  readonly attributes: Record<string, string | true>
}

export const parseSetCookie = (header: string): ParsedCookie => {
  const [pair, ...rest] = header.split(";")
  const eq = pair!.indexOf("=")
  const attributes: Record<string, string | true> = {}
  for (const part of rest) {
    const [k, ...v] = part.trim().split("=")
    attributes[k!.toLowerCase()] = v.length === 0 ? true : v.join("=")
  }
  return { name: pair!.slice(0, eq).trim(), value: pair!.slice(eq + 1).trim(), attributes }
}

/** A tiny browser: keeps cookies between requests, like a user agent would. */
export class Browser {
  readonly jar = new Map<string, string>()
  lastSetCookies: Array<ParsedCookie> = []
  /** `userAgent`: the User-Agent it sends (fetch's own otherwise). */
  constructor(
    readonly base: string,
    readonly userAgent?: string
  ) {}

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.userAgent !== undefined) headers.set("user-agent", this.userAgent)
    if (this.jar.size > 0) headers.set("cookie", [...this.jar].map(([k, v]) => `${k}=${v}`).join("; "))
    const response = await fetch(this.base + path, { ...init, headers, redirect: "manual" })
    this.lastSetCookies = response.headers.getSetCookie().map(parseSetCookie)
    for (const cookie of this.lastSetCookies) {
      const expires = cookie.attributes["expires"]
      const expired = typeof expires === "string" && Date.parse(expires) <= Date.now()
      if (cookie.value === "" || expired) this.jar.delete(cookie.name)
      else this.jar.set(cookie.name, cookie.value)
    }
    return response
  }

  async json<T = unknown>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
    const response = await this.request(path, init)
    const text = await response.text()
    return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as T }
  }

  get sessionId(): string | undefined {
    return this.jar.get("session-id")
  }
}

/**
 * The last middleware of a test app: `routes` maps a path to a handler (404 otherwise);
 * what a handler returns is the body, and nothing at all is a 204.
 */
export const routeTo =
  <M>(routes: Record<string, (ctx: Koa.Context, mw: M) => Promise<unknown> | unknown>, mw: M) =>
  async (ctx: Koa.Context): Promise<void> => {
    const route = routes[ctx.path]
    if (!route) return ctx.throw(404)
    const result = await route(ctx, mw)
    if (result !== undefined) ctx.body = result
    else if (ctx.body === undefined) ctx.status = 204
  }
