// `SessionMiddleware.store`: v3's Store API as Promises over the store's actions.
import type { Cluster, Redis } from "ioredis"
import { Effect } from "effect"
import type * as Csrf from "../../Csrf.js"
import type { Action } from "../store/action.js"
import { map } from "../store/action.js"
import { runPromise } from "../store/run.js"
import { backendOf } from "../store/service.js"
import type { SessionStoreService } from "../store/types.js"
import { checkSessionId } from "../validate.js"
import type { PromiseStore } from "./types.js"

// `client`: the store's connection, for apps that send their own commands (none for a memory store).
export const makePromiseStore = (
  store: SessionStoreService,
  client: Redis | Cluster | undefined,
  csrf: Csrf.Csrf
): PromiseStore<Redis | Cluster | undefined> => {
  const { actions, redis } = backendOf(store)
  const run = <A, E>(action: Action<A, E>) => runPromise(redis, action)
  return {
    client,
    prefix: store.prefix,
    references: store.references,
    maxAge: store.maxAgeMillis,
    byteLength: store.byteLength,
    createSessionId: () => Effect.runSync(store.createSessionId),
    getSessionKey: (id) => store.getSessionKey(id),
    getReferenceKey: (field, value) => store.getReferenceKey(field, value),
    get: (id, fields) => run(actions.get(id, fields)),
    set: (id, values, maxAge) => run(actions.set(id, values, maxAge)),
    unset: (id, fields, maxAge) => run(actions.unset(id, fields, maxAge)),
    touch: (id, maxAge) => run(actions.touch(id, maxAge)),
    delete: (id) => run(actions.delete(id)),
    // The CSRF secret the new id gets is made with the factory's csrf options.
    regenerate: (id, newId, maxAge) =>
      run(map(actions.regenerate(id, newId, maxAge, { csrfSecret: csrf.newSecret() }), (next) => next?.id)),
    listByReference: (field, value) => run(actions.listByReference(field, value)),
    deleteByReference: (field, value, options) => {
      const except = options?.except
      if (except === undefined) return run(actions.deleteByReference(field, value))
      const bad = checkSessionId(except)
      return bad === undefined ? run(actions.deleteByReference(field, value, except)) : Promise.reject(bad)
    },
    // Page by page: memory stays bounded by a page whatever the set's size.
    listSessions: async function* (field, value) {
      let cursor = "0"
      do {
        const page = await run(actions.listSessionsPage(field, value, cursor))
        yield* page.sessions
        cursor = page.cursor
      } while (cursor !== "0")
    },
    lifetime: (id) => run(actions.lifetime(id))
  }
}
