// What one ioredis client's events say about its connection: the fail-fast state behind
// `RedisClientService.use` (calls fail at once while the client is known to be down), and
// the shared deadline lists that fail every in-flight call when the connection goes down.
import type { Cluster, Redis } from "ioredis"
import { RedisTimeoutError } from "../../SessionError.js"
import { Deadlines } from "../deadlines.js"

/**
 * What one ioredis client's events say about its connection, shared by every service
 * over that client (one set of listeners per client, however many services or Koa
 * factories use it).
 *
 * The client is known to be down from the moment a connection attempt fails (or an open
 * connection dies with a socket error) until it connects again. A fresh client's first
 * connect, and the re-dial after an open connection closed cleanly (a restart, an idle
 * timeout, CLIENT KILL), are not failures: calls made meanwhile wait in ioredis' offline
 * queue as before, and fail at once if that attempt fails.
 */
export class ConnectionState {
  /** The connection error while the client is known to be down, else `undefined`. */
  cause: unknown = undefined
  // One list per timeout in use on this client: all its in-flight calls, failed at once
  // when the connection is seen to go down.
  private readonly lists = new Map<number, Deadlines>()

  constructor(private readonly client: Redis | Cluster) {
    client.on("error", this.onError)
    // "connect": the socket is up (a Cluster: the slot map loaded); what fails after that
    // is reported anew. "ready": serving.
    client.on("connect", this.onUp)
    client.on("ready", this.onUp)
  }

  deadlines(millis: number): Deadlines {
    let deadlines = this.lists.get(millis)
    if (deadlines === undefined) {
      deadlines = new Deadlines(millis, () => new RedisTimeoutError(millis))
      this.lists.set(millis, deadlines)
    }
    return deadlines
  }

  private readonly onError = (error: unknown): void => {
    // Our listener must not silence ioredis for a client whose owner attached none: print
    // what ioredis prints when nobody listens.
    if (this.client.listenerCount("error") === 1) {
      console.error("[ioredis] Unhandled error event:", error instanceof Error ? error.stack : error)
    }
    // While serving, only a socket error means the connection is gone (others are about
    // one command or subscription).
    if (this.client.status === "ready" && !isSocketError(error)) return
    this.cause = error
    for (const deadlines of this.lists.values()) deadlines.failAll(error)
  }

  private readonly onUp = (): void => {
    this.cause = undefined
  }
}

const isSocketError = (error: unknown): boolean =>
  error instanceof Error && typeof (error as { code?: unknown }).code === "string" && typeof (error as { syscall?: unknown }).syscall === "string"

const connections = new WeakMap<Redis | Cluster, ConnectionState>()

/** The one `ConnectionState` of `client`, created (its listeners attached) on first use. */
export const connectionOf = (client: Redis | Cluster): ConnectionState => {
  let state = connections.get(client)
  if (state === undefined) {
    state = new ConnectionState(client)
    connections.set(client, state)
  }
  return state
}
