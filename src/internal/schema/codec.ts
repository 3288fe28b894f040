// SessionSchema's encoding and decoding, as pure functions over Either, shared by the
// Effect views (Session, SessionStore) and the Promise views (ctx.session, the v3 store).
//
// Secrets: effect's ParseError quotes the value it failed on, and session values are the
// user's, so no ParseError (nor its message) is kept. A failure keeps the field's name and
// the schema's own description of what it expects (its AST printed), nothing else.
import { Either, Schema } from "effect"
import { InvalidSessionData, SessionDecodeError } from "../../SessionError.js"
import { assignField } from "../validate.js"
import type { SessionData } from "../store/types.js"

/** The declared fields: name → schema. */
export type Fields = { readonly [name: string]: Schema.Schema.AnyNoContext }

const MAX_DESCRIPTION = 200

const describe = (schema: Schema.Schema.AnyNoContext): string => {
  const text = String(schema.ast)
  return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION)}…` : text
}

const has = (record: object, key: string): boolean => Object.prototype.hasOwnProperty.call(record, key)

export interface Codec {
  /** The declared field names, in declaration order. */
  readonly names: ReadonlyArray<string>
  /** `raw`'s declared fields among `names`, decoded, plus `id`; the first field that fails, by name. */
  readonly decode: (raw: SessionData, names?: ReadonlyArray<string>) => Either.Either<Record<string, unknown>, SessionDecodeError>
  /** The given values, each encoded by its field's schema; nothing else. */
  readonly encode: (values: Readonly<Record<string, unknown>>) => Either.Either<Record<string, string>, InvalidSessionData>
  /** One value of one declared field, encoded (for reference look-ups). */
  readonly encodeValue: (field: string, value: unknown) => Either.Either<string, InvalidSessionData>
}

export const makeCodec = (fields: Fields): Codec => {
  const names = Object.keys(fields)
  const decoders = new Map<string, (raw: unknown) => Either.Either<unknown, unknown>>()
  const encoders = new Map<string, (value: unknown) => Either.Either<unknown, unknown>>()
  const expectedDecoded = new Map<string, string>()
  const expectedEncoded = new Map<string, string>()
  for (const name of names) {
    const schema = fields[name]!
    decoders.set(name, Schema.decodeUnknownEither(schema))
    encoders.set(name, Schema.encodeUnknownEither(schema))
    expectedDecoded.set(name, describe(schema))
    expectedEncoded.set(name, describe(Schema.typeSchema(schema)))
  }

  const encodeValue = (field: string, value: unknown): Either.Either<string, InvalidSessionData> => {
    const encoder = encoders.get(field)
    if (encoder === undefined) {
      return Either.left(new InvalidSessionData({ reason: "the field is not declared in the session schema", field }))
    }
    const encoded = encoder(value)
    if (Either.isLeft(encoded)) {
      return Either.left(new InvalidSessionData({ reason: `expected ${expectedEncoded.get(field)!}`, field }))
    }
    // The types ask for a string encoding; a schema built with `any` could still lie.
    if (typeof encoded.right !== "string") {
      return Either.left(new InvalidSessionData({ reason: `the field's schema encoded to a ${typeof encoded.right}, not a string`, field }))
    }
    return Either.right(encoded.right)
  }

  return {
    names,
    decode: (raw, wanted = names) => {
      const out: Record<string, unknown> = {}
      if (typeof raw["id"] === "string") out["id"] = raw["id"]
      for (const name of wanted) {
        const decoder = decoders.get(name)
        if (decoder === undefined || !has(raw, name)) continue
        const decoded = decoder(raw[name])
        if (Either.isLeft(decoded)) return Either.left(new SessionDecodeError({ field: name, expected: expectedDecoded.get(name)! }))
        if (name === "__proto__") Object.defineProperty(out, name, { value: decoded.right, enumerable: true, writable: true, configurable: true })
        else out[name] = decoded.right
      }
      return Either.right(out)
    },
    encode: (values) => {
      const out: Record<string, string> = {}
      for (const name of Object.keys(values)) {
        const encoded = encodeValue(name, values[name])
        if (Either.isLeft(encoded)) return Either.left(encoded.left)
        assignField(out, name, encoded.right)
      }
      return Either.right(out)
    },
    encodeValue
  }
}
