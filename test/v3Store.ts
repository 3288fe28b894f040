// What koa-redis-session-sets 3.0.0 sends to Redis, command for command, for tests that
// need data "written by v3" (../shared/v3.0.0-facts.md; checked against the v3.0.0 tag's
// lib/store.js). Its bugs are kept on purpose: no old-value SREM on a value change,
// `delete` leaving the id in its sets, reference sets without a TTL.
import { randomBytes } from "node:crypto"
import Tokens from "csrf"
import type { Redis } from "ioredis"

/** v3's default maxAge: 28 days. */
export const V3_MAX_AGE = 28 * 24 * 60 * 60 * 1000

export interface V3Store {
  readonly prefix: string
  createSessionId(): string
  getSessionKey(id: string): string
  getReferenceKey(field: string, value: string | number): string
  set(id: string, values: Record<string, string | number>, maxAge?: number): Promise<unknown>
  unset(id: string, fields: ReadonlyArray<string>, maxAge?: number): Promise<unknown>
  touch(id: string, maxAge?: number): Promise<unknown>
  delete(id: string): Promise<unknown>
  /** What v3's `ctx.session.get()` did on a session without one: store a fresh `csrf` secret. */
  createCsrfSecret(id: string): Promise<string>
}

/** v3's CSRF tokens: the `csrf` package with its defaults. */
export const v3Tokens = new Tokens()

/**
 * A v3 Store over a raw ioredis client. `prefix` is the resolved prefix
 * (`koa-redis-session-sets:<namespace>` for a namespace).
 */
export const v3Store = (client: Redis, prefix: string, references: ReadonlyArray<string>): V3Store => {
  const sessionKey = (id: string) => `${prefix}:{${id}}`
  const referenceKey = (field: string, value: string | number) => `${prefix}:${field}:{${value}}`
  const store: V3Store = {
    prefix,
    // 18 random bytes, standard base64: ids may hold '+' and '/'.
    createSessionId: () => randomBytes(18).toString("base64"),
    getSessionKey: sessionKey,
    getReferenceKey: referenceKey,
    set: (id, values, maxAge = V3_MAX_AGE) => {
      const key = sessionKey(id)
      const hmset: Array<string | number> = ["hmset", key, "id", id]
      const commands: Array<Array<string | number>> = [hmset, ["pexpire", key, maxAge]]
      for (const [field, value] of Object.entries(values)) {
        hmset.push(field, value)
        if (references.includes(field)) commands.push(["sadd", referenceKey(field, value), id])
      }
      return client.multi(commands).exec()
    },
    unset: async (id, fields, maxAge = V3_MAX_AGE) => {
      const key = sessionKey(id)
      const commands: Array<Array<string | number>> = [["hdel", key, ...fields], ["pexpire", key, maxAge]]
      const referenced = fields.filter((field) => references.includes(field))
      if (referenced.length > 0) {
        const values = await client.hmget(key, ...referenced)
        referenced.forEach((field, i) => commands.push(["srem", referenceKey(field, values[i]!), id]))
      }
      return client.multi(commands).exec()
    },
    touch: (id, maxAge = V3_MAX_AGE) => client.pexpire(sessionKey(id), maxAge),
    delete: async (id) => {
      const key = sessionKey(id)
      const commands: Array<Array<string | number>> = [["del", key]]
      if (references.length > 0) {
        // v3 read the values, then paired them up two by two as if they were field/value
        // pairs: its SREMs name keys that do not exist, so the id stays in its sets.
        const values = await client.hmget(key, ...references)
        for (let i = 0; i < values.length; i += 2) commands.push(["srem", referenceKey(String(values[i]), String(values[i + 1])), id])
      }
      return client.multi(commands).exec()
    },
    createCsrfSecret: async (id) => {
      const secret = v3Tokens.secretSync()
      await store.set(id, { _csrf_secret: secret })
      return secret
    }
  }
  return store
}

/** A v3 session id that has both '+' and '/' in it, as many real v3 ids do. */
export const v3IdWithPunctuation = (store: V3Store): string => {
  for (;;) {
    const id = store.createSessionId()
    if (id.includes("+") && id.includes("/")) return id
  }
}
