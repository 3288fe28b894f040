import { InvalidSessionData, InvalidSessionId } from "../SessionError.js"

/** Base64url for new ids; v3's base64 (`+`, `/`, `=`) is still accepted. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_+/=-]{16,128}$/

/** The field the store manages itself: it always holds the session's own id. */
export const ID_FIELD = "id"

/** Size limits checked before anything is sent to Redis. */
export interface Limits {
  /** Most fields one `set`/`unset`/`get` may name. */
  readonly maxFields: number
  /** Longest field name, in UTF-16 code units. */
  readonly maxFieldLength: number
  /** Largest value, in UTF-8 bytes once stringified. */
  readonly maxValueBytes: number
}

export const DEFAULT_LIMITS: Limits = { maxFields: 1000, maxFieldLength: 256, maxValueBytes: 64 * 1024 }

// A UTF-16 surrogate without its pair: Redis would store U+FFFD instead, so two different
// values would share one reference set.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

// C0 controls and DEL: they have no business in a field name and break logs and key names.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/

export const checkSessionId = (id: unknown): InvalidSessionId | undefined => {
  if (typeof id !== "string") return new InvalidSessionId({ reason: `expected a string, got ${describe(id)}` })
  if (!SESSION_ID_PATTERN.test(id)) {
    return new InvalidSessionId({ reason: "must be 16 to 128 characters of A-Z a-z 0-9 _ - + / =" })
  }
  return undefined
}

export const checkFieldName = (field: unknown, limits: Limits): InvalidSessionData | undefined => {
  if (typeof field !== "string") return new InvalidSessionData({ reason: `field names must be strings, got ${describe(field)}` })
  if (field.length === 0) return new InvalidSessionData({ reason: "field names must not be empty", field })
  if (field.length > limits.maxFieldLength) {
    return new InvalidSessionData({ reason: `field names are limited to ${limits.maxFieldLength} characters`, field })
  }
  if (CONTROL_CHARACTERS.test(field)) return new InvalidSessionData({ reason: "field names must not contain control characters", field })
  if (LONE_SURROGATE.test(field)) return new InvalidSessionData({ reason: "field names must be well-formed Unicode", field })
  return undefined
}

/** A stored value: strings as they are, finite numbers and booleans as their string form. */
export const encodeValue = (field: string, value: unknown, limits: Limits): string | InvalidSessionData => {
  let encoded: string
  if (typeof value === "string") encoded = value
  else if (typeof value === "number") {
    if (!Number.isFinite(value)) return new InvalidSessionData({ reason: `numbers must be finite, got ${value}`, field })
    encoded = String(value)
  } else if (typeof value === "boolean") encoded = value ? "true" : "false"
  else return new InvalidSessionData({ reason: `values must be a string, number or boolean, got ${describe(value)}`, field })
  if (LONE_SURROGATE.test(encoded)) return new InvalidSessionData({ reason: "values must be well-formed Unicode", field })
  // Length is a cheap lower bound of the byte length; only long strings need the exact count.
  if (encoded.length * 3 > limits.maxValueBytes && Buffer.byteLength(encoded) > limits.maxValueBytes) {
    return new InvalidSessionData({ reason: `values are limited to ${limits.maxValueBytes} bytes`, field })
  }
  return encoded
}

/** Validates `set` values into a flat `[field, value, field, value, …]` list. */
export const encodeValues = (values: unknown, limits: Limits): Array<string> | InvalidSessionData => {
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    return new InvalidSessionData({ reason: `values must be a plain object, got ${describe(values)}` })
  }
  const fields = Object.keys(values)
  if (fields.length > limits.maxFields) {
    return new InvalidSessionData({ reason: `at most ${limits.maxFields} fields per call, got ${fields.length}` })
  }
  const flat: Array<string> = []
  for (const field of fields) {
    const bad = checkFieldName(field, limits)
    if (bad !== undefined) return bad
    if (field === ID_FIELD) return new InvalidSessionData({ reason: "the id field is managed by the store", field })
    const encoded = encodeValue(field, (values as Record<string, unknown>)[field], limits)
    if (typeof encoded !== "string") return encoded
    flat.push(field, encoded)
  }
  return flat
}

/** Validates the `fields` argument of `get` and `unset`, removing duplicates. */
export const checkFieldList = (
  fields: unknown,
  limits: Limits,
  options: { readonly allowId: boolean }
): Array<string> | InvalidSessionData => {
  if (!Array.isArray(fields)) return new InvalidSessionData({ reason: `fields must be an array, got ${describe(fields)}` })
  if (fields.length > limits.maxFields) {
    return new InvalidSessionData({ reason: `at most ${limits.maxFields} fields per call, got ${fields.length}` })
  }
  const unique = new Set<string>()
  for (const field of fields) {
    const bad = checkFieldName(field, limits)
    if (bad !== undefined) return bad
    if (!options.allowId && field === ID_FIELD) {
      return new InvalidSessionData({ reason: "the id field is managed by the store", field })
    }
    unique.add(field as string)
  }
  return Array.from(unique)
}

/** Builds a plain record without letting a `__proto__` field reach the prototype setter. */
export const assignField = (target: Record<string, string>, field: string, value: string): void => {
  if (field === "__proto__") {
    Object.defineProperty(target, field, { value, enumerable: true, writable: true, configurable: true })
  } else {
    target[field] = value
  }
}

const describe = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  return typeof value
}
