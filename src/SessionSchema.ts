/**
 * Schema-typed sessions: declare a session's fields with effect `Schema`, and read and
 * write typed values through `Session`, `SessionStore`, `ctx.session` and
 * `SessionMiddleware.store`.
 *
 * Redis still holds strings (the v3 layout is unchanged): each field's schema decodes
 * from a string and encodes to one, which the types enforce. A typed view reads and
 * writes the declared fields only, plus `id` on reads; the untyped API is one
 * `untyped` away and unchanged.
 *
 * @since 4.0.0
 */
import { Effect, Either } from "effect"
import type { Schema, Types } from "effect"
import type { KoaSession, PromiseStore } from "./internal/koa/types.js"
import { makeCodec } from "./internal/schema/codec.js"
import type { Fields } from "./internal/schema/codec.js"
import type { DeleteByReferenceOptions, MaxAgeInput, SessionStoreError } from "./internal/store/types.js"
import { Session } from "./Session.js"
import type { SessionService } from "./Session.js"
import type { InvalidSessionData, InvalidSessionId, RedisError, SessionDecodeError } from "./SessionError.js"
import { SessionConfigError } from "./SessionError.js"
import { SessionStore } from "./SessionStore.js"
import type { SessionStoreService } from "./SessionStore.js"

export type { Fields } from "./internal/schema/codec.js"

/**
 * Why a field's schema is refused: Redis stores strings, so a field's schema must
 * encode to a string (`Schema.NumberFromString`, not `Schema.Number`); `id` is the
 * session id, managed by the store.
 *
 * @since 4.0.0
 * @category models
 */
export type CheckFields<F> = {
  readonly [K in keyof F]: K extends "id"
    ? "`id` is the session id, managed by the store: it cannot be declared"
    : F[K] extends Schema.Schema<infer _A, infer I, infer R>
      ? [I] extends [string]
        ? [R] extends [never]
          ? F[K]
          : "a field's schema may not have requirements (its context must be never)"
        : "a field's schema must encode to a string: Redis stores strings (use e.g. Schema.NumberFromString)"
      : never
}

/** The declared field names. */
export type FieldName<F extends Fields> = keyof F & string

/**
 * A session as a typed view reads it: the declared fields that are present, decoded,
 * plus `id` once the session exists.
 *
 * @since 4.0.0
 * @category models
 */
export type Data<F extends Fields> = Types.Simplify<{ id?: string } & { -readonly [K in keyof F]?: Schema.Schema.Type<F[K]> }>

/**
 * What a typed view writes: any of the declared fields, as their decoded type. Only
 * the fields given are encoded and written.
 *
 * @since 4.0.0
 * @category models
 */
export type Values<F extends Fields> = { readonly [K in keyof F]?: Schema.Schema.Type<F[K]> }

/** The errors of a typed read. */
export type ReadError = SessionStoreError | SessionDecodeError

/**
 * The typed view of a request's `Session`.
 *
 * @since 4.0.0
 * @category models
 */
export interface TypedSession<F extends Fields> {
  /** The `Session` underneath: every operation, untyped (CSRF tokens among them). */
  readonly untyped: SessionService
  readonly id: SessionService["id"]
  /**
   * The declared fields (or the given ones) that are present, decoded, plus `id`; `{}`
   * when there is no session. Reads only those fields from Redis. Fails with
   * `SessionDecodeError` naming the first field whose stored value does not decode.
   */
  readonly get: <K extends FieldName<F> = FieldName<F>>(fields?: ReadonlyArray<K>) => Effect.Effect<Data<Pick<F, K>>, ReadError>
  /** Encodes and writes the given fields. A value its schema refuses fails with `InvalidSessionData` naming the field, and nothing is written. */
  readonly set: (values: Values<F>, maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  readonly unset: (fields: ReadonlyArray<FieldName<F>>, maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  readonly touch: SessionService["touch"]
  readonly delete: SessionService["delete"]
  readonly regenerate: SessionService["regenerate"]
}

/**
 * The typed view of a `SessionStoreService`.
 *
 * @since 4.0.0
 * @category models
 */
export interface TypedSessionStore<F extends Fields> {
  /** The store underneath: every operation, untyped. */
  readonly untyped: SessionStoreService
  /** As {@link TypedSession.get}, for the session `id`. */
  readonly get: <K extends FieldName<F> = FieldName<F>>(id: string, fields?: ReadonlyArray<K>) => Effect.Effect<Data<Pick<F, K>>, ReadError>
  readonly set: (id: string, values: Values<F>, maxAge?: MaxAgeInput | null) => Effect.Effect<void, SessionStoreError>
  readonly setExisting: (id: string, values: Values<F>, maxAge?: MaxAgeInput | null) => Effect.Effect<boolean, SessionStoreError>
  readonly unset: (
    id: string,
    fields: ReadonlyArray<FieldName<F>>,
    maxAge?: MaxAgeInput | null
  ) => Effect.Effect<boolean, SessionStoreError>
  /** Ids of the live sessions whose `field` holds `value` (encoded by the field's schema). */
  readonly listByReference: <K extends FieldName<F>>(
    field: K,
    value: Schema.Schema.Type<F[K]>
  ) => Effect.Effect<Array<string>, RedisError | InvalidSessionData>
  /** Deletes every session whose `field` holds `value` (encoded by the field's schema), but `options.except`; how many. */
  readonly deleteByReference: <K extends FieldName<F>>(
    field: K,
    value: Schema.Schema.Type<F[K]>,
    options?: DeleteByReferenceOptions
  ) => Effect.Effect<number, RedisError | InvalidSessionData | InvalidSessionId>
}

/**
 * The typed view of `ctx.session`. Rejects with the same typed errors.
 *
 * @since 4.0.0
 * @category models
 */
export interface TypedKoaSession<F extends Fields> {
  readonly untyped: KoaSession
  get<K extends FieldName<F> = FieldName<F>>(fields?: ReadonlyArray<K>): Promise<Data<Pick<F, K>>>
  set(values: Values<F>, maxAge?: MaxAgeInput | null): Promise<void>
  unset(fields: ReadonlyArray<FieldName<F>>, maxAge?: MaxAgeInput | null): Promise<void>
  touch(maxAge?: MaxAgeInput | null): Promise<void>
  delete(): Promise<void>
  regenerate(): Promise<void>
}

/**
 * The typed view of `SessionMiddleware.store`.
 *
 * @since 4.0.0
 * @category models
 */
export interface TypedPromiseStore<F extends Fields> {
  readonly untyped: PromiseStore
  get<K extends FieldName<F> = FieldName<F>>(id: string, fields?: ReadonlyArray<K>): Promise<Data<Pick<F, K>>>
  set(id: string, values: Values<F>, maxAge?: MaxAgeInput | null): Promise<void>
  unset(id: string, fields: ReadonlyArray<FieldName<F>>, maxAge?: MaxAgeInput | null): Promise<boolean>
  listByReference<K extends FieldName<F>>(field: K, value: Schema.Schema.Type<F[K]>): Promise<Array<string>>
  deleteByReference<K extends FieldName<F>>(field: K, value: Schema.Schema.Type<F[K]>): Promise<number>
}

/**
 * A session's declared fields, and typed views over each session API.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionSchema<F extends Fields> {
  readonly fields: F
  /** The typed view of the `Session` in context. */
  readonly session: Effect.Effect<TypedSession<F>, never, Session>
  /** The typed view of a `Session` service. */
  readonly ofSession: (session: SessionService) => TypedSession<F>
  /** The typed view of the `SessionStore` in context. */
  readonly sessionStore: Effect.Effect<TypedSessionStore<F>, never, SessionStore>
  /** The typed view of a store service. */
  readonly store: (store: SessionStoreService) => TypedSessionStore<F>
  /** The typed view of `ctx.session`. */
  readonly koa: (session: KoaSession) => TypedKoaSession<F>
  /** The typed view of `SessionMiddleware.store`. */
  readonly promiseStore: (store: PromiseStore) => TypedPromiseStore<F>
  /** Decodes a session as the store returns it (declared fields and `id` only). */
  readonly decode: (data: Readonly<Record<string, string>>) => Either.Either<Data<F>, SessionDecodeError>
  /** Encodes values for the untyped API. */
  readonly encode: (values: Values<F>) => Either.Either<Record<string, string>, InvalidSessionData>
}

// Either → Promise, rejecting with the typed error itself (as the facade does).
const orThrow = <A, E>(either: Either.Either<A, E>): A => {
  if (Either.isLeft(either)) throw either.left
  return either.right
}

/**
 * Declares a session's fields.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { SessionSchema } from "koa-redis-session-sets"
 *
 * const UserSession = SessionSchema.make({ user_id: Schema.NumberFromString, role: Schema.Literal("admin", "user") })
 *
 * const login = (userId: number) =>
 *   Effect.gen(function* () {
 *     const session = yield* UserSession.session
 *     yield* session.regenerate
 *     yield* session.set({ user_id: userId, role: "user" })
 *     const data = yield* session.get() // { id?: string; user_id?: number; role?: "admin" | "user" }
 *   })
 * ```
 *
 * @since 4.0.0
 * @category constructors
 */
export const make = <F extends Fields>(fields: F & CheckFields<F>): SessionSchema<F> => {
  for (const name of Object.keys(fields)) {
    if (name === "id") throw new SessionConfigError({ option: "fields.id", reason: "`id` is the session id, managed by the store" })
  }
  const codec = makeCodec(fields)
  type D = Data<F>
  const decode = (raw: Readonly<Record<string, string>>, names?: ReadonlyArray<string>) =>
    codec.decode(raw, names) as Either.Either<D, SessionDecodeError>
  const wanted = (fields: ReadonlyArray<string> | undefined): ReadonlyArray<string> => fields ?? codec.names
  const encode = (values: Values<F>) => codec.encode(values as Readonly<Record<string, unknown>>)

  const ofSession = (session: SessionService): TypedSession<F> => ({
    untyped: session,
    id: session.id,
    get: (fields) => Effect.flatMap(session.get(wanted(fields)), (raw) => decode(raw, wanted(fields))),
    set: (values, maxAge) => Effect.flatMap(encode(values), (encoded) => session.set(encoded, maxAge)),
    unset: (fields, maxAge) => session.unset(fields, maxAge),
    touch: session.touch,
    delete: session.delete,
    regenerate: session.regenerate
  })

  const store = (service: SessionStoreService): TypedSessionStore<F> => ({
    untyped: service,
    get: (id, fields) => Effect.flatMap(service.get(id, wanted(fields)), (raw) => decode(raw, wanted(fields))),
    set: (id, values, maxAge) => Effect.flatMap(encode(values), (encoded) => service.set(id, encoded, maxAge)),
    setExisting: (id, values, maxAge) => Effect.flatMap(encode(values), (encoded) => service.setExisting(id, encoded, maxAge)),
    unset: (id, fields, maxAge) => service.unset(id, fields, maxAge),
    listByReference: (field, value) =>
      Effect.flatMap(codec.encodeValue(field, value), (encoded) => service.listByReference(field, encoded)),
    deleteByReference: (field, value, options) =>
      Effect.flatMap(codec.encodeValue(field, value), (encoded) => service.deleteByReference(field, encoded, options))
  })

  const koa = (session: KoaSession): TypedKoaSession<F> => ({
    untyped: session,
    get: async (fields) => orThrow(decode(await session.get(wanted(fields)), wanted(fields))),
    set: async (values, maxAge) => session.set(orThrow(encode(values)), maxAge),
    unset: (fields, maxAge) => session.unset(fields, maxAge),
    touch: (maxAge) => session.touch(maxAge),
    delete: () => session.delete(),
    regenerate: () => session.regenerate()
  })

  const promiseStore = (service: PromiseStore): TypedPromiseStore<F> => ({
    untyped: service,
    get: async (id, fields) => orThrow(decode(await service.get(id, wanted(fields)), wanted(fields))),
    set: async (id, values, maxAge) => service.set(id, orThrow(encode(values)), maxAge),
    unset: (id, fields, maxAge) => service.unset(id, fields, maxAge),
    listByReference: async (field, value) => service.listByReference(field, orThrow(codec.encodeValue(field, value))),
    deleteByReference: async (field, value) => service.deleteByReference(field, orThrow(codec.encodeValue(field, value)))
  })

  return {
    fields,
    session: Effect.map(Session, ofSession),
    ofSession,
    sessionStore: Effect.map(SessionStore, store),
    store,
    koa,
    promiseStore,
    decode: (data) => decode(data),
    encode
  }
}

/**
 * Schema-typed sessions (see {@link make}).
 *
 * @since 4.0.0
 * @category constructors
 */
export const SessionSchema = { make } as const

/**
 * Type helpers of {@link SessionSchema}.
 *
 * @since 4.0.0
 */
export declare namespace SessionSchema {
  /** The decoded session of a `SessionSchema`: `SessionSchema.Type<typeof UserSession>`. */
  export type Type<S> = S extends SessionSchema<infer F> ? Data<F> : never
  /** What a `SessionSchema`'s `set` takes. */
  export type Input<S> = S extends SessionSchema<infer F> ? Values<F> : never
  // Not named `Session`, `KoaSession`, `PromiseStore`: the .d.ts bundler then marks the
  // package's own `Session` export (a class) as a type-only export.
  /** The typed views, by their fields: `SessionSchema.SessionView<typeof UserSession.fields>`. */
  export type SessionView<F extends Fields> = TypedSession<F>
  export type StoreView<F extends Fields> = TypedSessionStore<F>
  export type KoaSessionView<F extends Fields> = TypedKoaSession<F>
  export type PromiseStoreView<F extends Fields> = TypedPromiseStore<F>
}
