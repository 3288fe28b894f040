// The options of the Koa factory and of `SessionStore.make/layer`, checked when they are
// given rather than on the first request. Every check answers a `SessionConfigError`
// naming the option (or the checked values), and the callers throw or fail with it. No
// I/O and no state.
//
//  - `checkFactoryOptions(app, options)`: the factory's own options (names, cookie,
//    connection, CSRF). The store's values are then checked by `resolveOptionValues` in
//    SessionStore.ts (`resolveOptions` for `SessionStore.make/layer`, names included),
//    with the helpers below (maxAge, referenced field names, names).
//  - v3 handed its whole options object to `ctx.cookies.set`, so the `cookies` package's
//    attributes were v3 options too. Each is honoured (`priority`, `partitioned`) or
//    refused with its reason (`expires`, `maxage`, `secureProxy`), never ignored.
import { Duration } from "effect"
import { SessionConfigError } from "../SessionError.js"
import { durationMillis, MAX_AGE_LIMIT_MS, timeoutMillis } from "./duration.js"
import { RESERVED_IN_REFERENCE_FIELD } from "./keys.js"
import { DEFAULT_LIMITS } from "./validate.js"

const configError = (option: string, reason: string) => new SessionConfigError({ option, reason })

// ---- option names ----

/** The options of `SessionStore.make/layer`. */
const CONTROL_OPTION_NAMES = ["rolling", "rollingInterval", "absoluteMaxAge", "track", "onEvict"]
export const STORE_OPTION_NAMES: ReadonlyArray<string> = ["prefix", "namespace", "references", "maxAge", "byteLength", "limits", ...CONTROL_OPTION_NAMES]

/** The keys of the `limits` option. */
export const LIMIT_NAMES: ReadonlyArray<string> = Object.keys(DEFAULT_LIMITS)

const CSRF_OPTION_NAMES = ["saltLength", "secretLength"]
const CONNECTION_OPTION_NAMES = ["client", "redis", "timeout"]
const COOKIE_OPTION_NAMES = ["key", "signed", "httpOnly", "sameSite", "secure", "domain", "path", "overwrite", "priority", "partitioned"]

/**
 * Attributes of the `cookies` package that v3 passed through (it handed its options to
 * `ctx.cookies.set`) and that v4 refuses, with the reason. They are known names: the
 * error says why, instead of "unknown option".
 */
const REFUSED_COOKIE_OPTIONS: Readonly<Record<string, string>> = {
  expires:
    "the cookie's lifetime follows maxAge, which every write sends (v3 ignored expires too: " +
    "its maxAge, always set, overrode it); give maxAge instead",
  maxage: "the cookies package's deprecated spelling; use maxAge, which sets both the session's and the cookie's lifetime",
  secureProxy: "deprecated by the cookies package; use secure"
}

/** Every name the Koa factory accepts, v3's included. */
export const FACTORY_OPTION_NAMES: ReadonlyArray<string> = [
  "store",
  ...STORE_OPTION_NAMES,
  ...CSRF_OPTION_NAMES,
  ...CONNECTION_OPTION_NAMES,
  ...COOKIE_OPTION_NAMES,
  ...Object.keys(REFUSED_COOKIE_OPTIONS)
]

const CONNECTION_HINT = "connection settings go in `redis`: a URL (`redis: \"redis://host:6379\"`) or ioredis options (`redis: { host, port, password }`)"

/** Names that are not options but that someone may well try, with what to do instead. */
const FACTORY_HINTS: Readonly<Record<string, string>> = {
  url: CONNECTION_HINT,
  host: CONNECTION_HINT,
  port: CONNECTION_HINT,
  password: CONNECTION_HINT,
  username: CONNECTION_HINT,
  db: CONNECTION_HINT,
  keys: "the signing keys are the Koa app's: set `app.keys = ['a secret']` (the cookie's name is `key`)",
  ttl: "did you mean `maxAge`?"
}

const STORE_CONNECTION_HINT =
  "the store takes its connection from a RedisClient layer: `SessionStore.layer(options).pipe(Layer.provide(RedisClient.layer(url)))`, " +
  "or `RedisClient.layerFromClient(client, { timeout })` for a client you own"

/** What `SessionStore.make/layer` says about the factory's names given to it. */
const storeHint = (name: string): string | undefined => {
  if (CONNECTION_OPTION_NAMES.includes(name)) return STORE_CONNECTION_HINT
  if (FACTORY_OPTION_NAMES.includes(name)) return "an option of the Koa factory `koaRedisSessionSets(app, options)`, not of the store"
  return undefined
}

// ---- did you mean ----

/** Edit distance with adjacent transpositions counted as one edit (optimal string alignment). */
export const editDistance = (a: string, b: string): number => {
  const rows: Array<Array<number>> = []
  for (let i = 0; i <= a.length; i++) {
    const row: Array<number> = [i]
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j)
        continue
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1)
      row.push(best)
    }
    rows.push(row)
  }
  return rows[a.length]![b.length]!
}

/**
 * The candidate closest to `name` (ignoring case), when it is close: at most one edit
 * for names up to 5 characters, two up to 8, three beyond.
 */
export const closestName = (name: string, candidates: ReadonlyArray<string>): string | undefined => {
  if (name.length > 64) return undefined
  const lower = name.toLowerCase()
  const limit = lower.length <= 5 ? 1 : lower.length <= 8 ? 2 : 3
  let best: string | undefined
  let bestDistance = limit + 1
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

const quoteName = (name: string): string => `\`${name.length > 64 ? `${name.slice(0, 64)}…` : name}\``

/**
 * The first own name of `options` that is not in `known`, as a `SessionConfigError`
 * with a hint for that name, or else a did-you-mean when a known name is close. A name
 * whose value is `undefined` counts as absent.
 */
export const checkOptionNames = (
  options: object,
  known: ReadonlyArray<string>,
  hint: (name: string) => string | undefined = () => undefined,
  path = ""
): SessionConfigError | undefined => {
  for (const name of Object.keys(options)) {
    if (known.includes(name) || (options as Record<string, unknown>)[name] === undefined) continue
    const option = `${path}${name}`
    // A hint is about this very name, so it wins over a guess.
    const close = closestName(name, known)
    const advice = hint(name) ?? (close === undefined ? undefined : `did you mean ${quoteName(`${path}${close}`)}?`)
    return configError(option, `unknown option ${quoteName(option)}${advice === undefined ? "" : `; ${advice}`}`)
  }
  return undefined
}

/** The `SessionStore.make/layer` name check, with hints for the factory's names. */
export const checkStoreOptionNames = (options: object): SessionConfigError | undefined =>
  checkOptionNames(options, STORE_OPTION_NAMES, storeHint)

/** The names inside the `limits` option. */
export const checkLimitNames = (limits: object): SessionConfigError | undefined => checkOptionNames(limits, LIMIT_NAMES, undefined, "limits.")


// ---- store values ----

/** Why a referenced field name cannot be used, or `undefined` when it can. */
export const referenceFieldRule = (field: string): string | undefined => {
  if (!RESERVED_IN_REFERENCE_FIELD.test(field)) return undefined
  return (
    `${JSON.stringify(field.slice(0, 64))}: referenced field names may not contain ":", "{" or "}". ` +
    "Reference sets are keyed <prefix>:<field>:{<value>}, so with references [\"a\", \"a:{b\"] the pairs " +
    "(\"a\", \"b:{c\") and (\"a:{b\", \"c\") would share the key <prefix>:a:{b:{c}"
  )
}

const DURATION_EXAMPLES = "milliseconds, a string such as \"2h\", \"28 days\" or \"250 millis\", or an Effect Duration"

const ZERO_MAX_AGE =
  "0 is refused: v3 treated maxAge 0 as the 28-day default, not as \"expire at once\" or a browser-session cookie. " +
  "Omit maxAge for the 28-day default, or give a positive duration such as \"2h\""

const EMPTY_MAX_AGE = "\"\" is refused: v3 treated an empty maxAge as the 28-day default. Omit maxAge for the 28-day default, or give a positive duration such as \"2h\""

/**
 * The `maxAge` option in milliseconds, `undefined` when it is absent (`undefined` or
 * `null`: the 28-day default), or why it is refused. Stricter than a per-call `maxAge`,
 * where v3's "falsy means the default" still holds: as an option, 0 and `""` are refused
 * (v3 read them as 28 days), and so are strings the duration grammar cannot parse, such
 * as "1 month" (v3 fell back to 28 days for those).
 */
export const checkMaxAgeOption = (maxAge: unknown): number | undefined | SessionConfigError => {
  if (maxAge === undefined || maxAge === null) return undefined
  if (typeof maxAge === "string" && maxAge.trim() === "") return configError("maxAge", EMPTY_MAX_AGE)
  const millis = durationMillis(maxAge)
  if (millis === undefined) {
    if (typeof maxAge !== "string") return configError("maxAge", `must be ${DURATION_EXAMPLES}; got ${describe(maxAge)}`)
    return configError(
      "maxAge",
      `cannot parse ${JSON.stringify(maxAge.slice(0, 64))} as a duration (give ${DURATION_EXAMPLES}); ` +
        "v3 silently used 28 days for strings it could not parse"
    )
  }

  const got = typeof maxAge === "number" ? describe(maxAge) : `${describe(maxAge)} (${millis} ms)`
  if (Number.isNaN(millis)) return configError("maxAge", "must be a positive duration, got NaN")
  // Effect's grammar reads "-1 hours" as 0: that one is negative, not v3's 0.
  const negative = millis < 0 || (typeof maxAge === "string" && maxAge.trim().startsWith("-"))
  if (millis === 0 && !negative) return configError("maxAge", ZERO_MAX_AGE)
  if (millis <= 0) return configError("maxAge", `must be a positive duration, got ${got}`)
  if (millis > MAX_AGE_LIMIT_MS) return configError("maxAge", `must be at most 1000 years, got ${got}`)
  // Whole milliseconds, as `toMillis` rounds a call's maxAge.
  const whole = Math.round(millis)
  if (whole < 1) return configError("maxAge", `must be at least 1 ms, got ${got}`)
  return whole
}

/**
 * A timeout option (`timeout`, `connectTimeout`) in whole milliseconds, rounded up, or
 * the `SessionConfigError` naming it: a positive duration of the one duration grammar, of
 * at most Node's timer limit.
 */
export const checkTimeoutOption = (option: string, timeout: unknown): number | SessionConfigError => {
  const millis = timeoutMillis(timeout)
  return typeof millis === "number" ? millis : configError(option, `${millis.reason}, got ${describe(timeout)}`)
}

// ---- factory values ----

/** The app's part the factory reads. */
interface AppLike {
  readonly keys?: unknown
}

/** What `checkFactoryOptions` hands back: the cookie options as given (absent ones undefined). */
export interface CheckedFactoryOptions {
  readonly key: string | undefined
  readonly signed: boolean | undefined
  readonly httpOnly: boolean | undefined
  readonly overwrite: boolean | undefined
  readonly secure: boolean | undefined
  readonly sameSite: "strict" | "lax" | "none" | boolean | undefined
  readonly domain: string | undefined
  readonly path: string | undefined
  readonly priority: "low" | "medium" | "high" | undefined
  readonly partitioned: boolean | undefined
}

// The `cookies` package's own rules (cookies 0.9, index.js), which it applies on every
// write and answers with a TypeError at request time.
const FIELD_CONTENT = /^[\u0009\u0020-\u007e\u0080-\u00ff]+$/
const RESTRICTED_NAME_CHARS = /[;=]/
const DOMAIN_VALUE = /^([.]?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i
const PATH_VALUE = /^[ -:=-~]*$/
const SAME_SITE = /^(?:lax|none|strict)$/i
const PRIORITY = /^(?:low|medium|high)$/i

const describe = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (typeof value === "string") return JSON.stringify(value.slice(0, 64))
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  if (Duration.isDuration(value)) return Duration.format(value)
  return typeof value
}

const checkBoolean = (options: Record<string, unknown>, name: string): SessionConfigError | undefined => {
  const value = options[name]
  return value === undefined || typeof value === "boolean" ? undefined : configError(name, `must be true or false, got ${describe(value)}`)
}

const checkAppKeys = (keys: unknown): string | undefined => {
  const howTo = "set app.keys = ['a long random secret'] before creating the middleware, or pass signed: false"
  if (keys === undefined || keys === null) return `signed cookies need app.keys; ${howTo}`
  if (Array.isArray(keys)) {
    if (keys.length === 0) return `app.keys is empty, so there is no key to sign the cookie with; ${howTo}`
    const bad = keys.findIndex((key) => !((typeof key === "string" && key !== "") || (Buffer.isBuffer(key) && key.length > 0)))
    if (bad !== -1) return `app.keys[${bad}] must be a non-empty string or Buffer, got ${describe(keys[bad])}`
    return undefined
  }
  // A Keygrip (what the `cookies` package calls: sign and index).
  const grip = keys as { readonly sign?: unknown; readonly index?: unknown }
  if (typeof keys === "object" && typeof grip.sign === "function" && typeof grip.index === "function") return undefined
  return `app.keys must be an array of secrets or a Keygrip, got ${describe(keys)}; ${howTo}`
}

const checkRedis = (redis: unknown): SessionConfigError | undefined => {
  if (typeof redis === "string") {
    let url: URL
    try {
      url = new URL(redis)
    } catch {
      return configError("redis", "must be a redis:// or rediss:// URL (or ioredis options), and this string is not a URL")
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
      return configError(
        "redis",
        `must be a redis:// or rediss:// URL (or ioredis options such as { host, port } or { path } for a socket), got the protocol ${JSON.stringify(url.protocol)}`
      )
    }
    return undefined
  }
  if (typeof redis !== "object" || redis === null || Array.isArray(redis)) {
    return configError("redis", `must be a redis:// or rediss:// URL or an object of ioredis options, got ${describe(redis)}`)
  }
  if (isClientLike(redis)) return configError("redis", "is an ioredis client; pass a client the app owns as `client` instead")
  return undefined
}

// Duck-typed rather than `instanceof`: an app may load another copy of ioredis.
const isClientLike = (value: unknown): boolean =>
  typeof value === "object" && value !== null && typeof (value as { readonly sendCommand?: unknown }).sendCommand === "function"

const checkPositiveInteger = (options: Record<string, unknown>, name: string): SessionConfigError | undefined => {
  const value = options[name]
  if (value === undefined) return undefined
  return Number.isInteger(value) && (value as number) >= 1 ? undefined : configError(name, `must be a positive integer, got ${describe(value)}`)
}

/**
 * Checks the options of `koaRedisSessionSets(app, options)` that are the factory's own:
 * every name (the store's included), the cookie, the connection, the timeout and CSRF.
 * The store's values are `resolveOptions`'s to check (SessionStore.ts).
 */
export const checkFactoryOptions = (app: AppLike, options: unknown): CheckedFactoryOptions | SessionConfigError => {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return configError("options", `must be an object, got ${describe(options)}`)
  }
  const given = options as Record<string, unknown>
  const unknown = checkOptionNames(given, FACTORY_OPTION_NAMES, (name) => (Object.hasOwn(FACTORY_HINTS, name) ? FACTORY_HINTS[name] : undefined))
  if (unknown !== undefined) return unknown
  for (const [name, reason] of Object.entries(REFUSED_COOKIE_OPTIONS)) {
    if (given[name] !== undefined) return configError(name, reason)
  }

  const key = given["key"]
  if (key !== undefined) {
    if (typeof key !== "string" || key === "") return configError("key", `must be a non-empty string, got ${describe(key)}`)
    if (!FIELD_CONTENT.test(key) || RESTRICTED_NAME_CHARS.test(key)) {
      return configError("key", `${describe(key)} is not a valid cookie name (no control characters, ";" or "=")`)
    }
  }
  for (const name of ["signed", "httpOnly", "overwrite", "secure", "partitioned"]) {
    const bad = checkBoolean(given, name)
    if (bad !== undefined) return bad
  }
  const sameSite = given["sameSite"]
  if (sameSite !== undefined && typeof sameSite !== "boolean" && !(typeof sameSite === "string" && SAME_SITE.test(sameSite))) {
    return configError("sameSite", `must be "strict", "lax", "none" (any case), true (strict) or false (no attribute), got ${describe(sameSite)}`)
  }
  const domain = given["domain"]
  if (domain !== undefined && (typeof domain !== "string" || (domain !== "" && !DOMAIN_VALUE.test(domain)))) {
    return configError("domain", `must be a domain name such as "example.com" or ".example.com", got ${describe(domain)}`)
  }
  const path = given["path"]
  if (path !== undefined && (typeof path !== "string" || !PATH_VALUE.test(path))) {
    return configError("path", `must be a URL path such as "/" (printable ASCII without ";" or "<"), got ${describe(path)}`)
  }
  const priority = given["priority"]
  if (priority !== undefined && !(typeof priority === "string" && PRIORITY.test(priority))) {
    return configError("priority", `must be "low", "medium" or "high", got ${describe(priority)}`)
  }

  const signed = given["signed"] as boolean | undefined
  if (signed !== false) {
    const bad = checkAppKeys(app.keys)
    if (bad !== undefined) return configError("signed", bad)
  }

  const client = given["client"]
  const redis = given["redis"]
  if (client !== undefined && redis !== undefined) {
    return configError("redis", "give either `client` (a connection the app owns) or `redis` (one the library opens and closes), not both")
  }
  if (client !== undefined && !isClientLike(client)) {
    return configError("client", `must be an ioredis Redis or Cluster, got ${describe(client)}; omit it to let the library connect (see \`redis\`)`)
  }
  if (redis !== undefined) {
    const bad = checkRedis(redis)
    if (bad !== undefined) return bad
  }
  if (given["timeout"] !== undefined) {
    const bad = checkTimeoutOption("timeout", given["timeout"])
    if (bad instanceof SessionConfigError) return bad
  }
  for (const name of CSRF_OPTION_NAMES) {
    const bad = checkPositiveInteger(given, name)
    if (bad !== undefined) return bad
  }

  return {
    key: key as string | undefined,
    signed,
    httpOnly: given["httpOnly"] as boolean | undefined,
    overwrite: given["overwrite"] as boolean | undefined,
    secure: given["secure"] as boolean | undefined,
    sameSite: sameSite as CheckedFactoryOptions["sameSite"],
    domain: domain as string | undefined,
    path: path as string | undefined,
    priority: priority as CheckedFactoryOptions["priority"],
    partitioned: given["partitioned"] as boolean | undefined
  }
}
