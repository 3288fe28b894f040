// Account controls: the idle/rolling/absolute lifetimes, per-value session caps and
// device tracking. Options → resolved controls (or the `SessionConfigError` naming the
// option), the reserved hash fields they use, and the pure rules every backend applies
// (absolute deadline, last-seen throttle, least-recently-active order). No I/O.
//
// With none of the controls configured, a session's hash holds exactly what v3 wrote:
// no reserved field is added and none is refused, so a v3 deployment upgrades unchanged.
import { SessionConfigError } from "../../SessionError.js"
import { MAX_AGE_LIMIT_MS, durationMillis } from "../duration.js"
import { checkOptionNames } from "../options.js"
import type { SessionEviction, SessionInfo, SessionLifetime, TrackOptions } from "./types.js"

/** Creation time (epoch ms, the store's clock): set by the first write, kept by `regenerate`. */
export const CREATED_AT_FIELD = "_created_at"
/** Last activity (epoch ms): every write, and a read at most once per `rollingInterval`. */
export const LAST_SEEN_FIELD = "_last_seen_at"
/** The `User-Agent` of the last request that wrote (with `track: { userAgent: true }`). */
export const USER_AGENT_FIELD = "_user_agent"
/** The client address of the last request that wrote (with `track: { ip: true }`). */
export const IP_FIELD = "_ip"

/** The reserved fields, read-only for the app while controls are on. */
export const CONTROL_FIELDS: ReadonlyArray<string> = [CREATED_AT_FIELD, LAST_SEEN_FIELD, USER_AGENT_FIELD, IP_FIELD]

/** Longest user agent and address stored: longer ones are cut (a header is the client's to choose). */
export const MAX_USER_AGENT_LENGTH = 512
export const MAX_IP_LENGTH = 64

/** The controls of one store, resolved. */
export interface Controls {
  /** Whether any control is configured: the hash then records its creation and last-seen times. */
  readonly on: boolean
  /** A Session read of a live session extends its idle lifetime (to the store's `maxAge`, never shorter). */
  readonly rolling: boolean
  /** Least time between two read-side updates (renewal, last-seen) of one session, in ms. */
  readonly rollingIntervalMillis: number
  /** Creation + this is the session's deadline, whatever its activity; `undefined`: none. */
  readonly absoluteMaxAgeMillis: number | undefined
  /** Per referenced field (the store's `references` order): most live sessions per value, 0 = no cap. */
  readonly maxSessions: ReadonlyArray<number>
  readonly trackUserAgent: boolean
  readonly trackIp: boolean
  /** Whether Session reads go through the read step (renewal, last-seen): rolling, tracking or a cap. */
  readonly observesReads: boolean
}

/** The options this module reads, as given. */
export interface ControlOptions {
  readonly rolling?: boolean | undefined
  readonly rollingInterval?: unknown
  readonly absoluteMaxAge?: unknown
  readonly track?: TrackOptions | undefined
}

const configError = (option: string, reason: string) => new SessionConfigError({ option, reason })

const positiveDuration = (option: string, input: unknown): number | SessionConfigError => {
  const millis = durationMillis(input)
  if (millis === undefined || Number.isNaN(millis) || millis <= 0) {
    return configError(option, 'must be a positive duration: milliseconds, a string such as "8h", or an Effect Duration')
  }
  if (millis > MAX_AGE_LIMIT_MS) return configError(option, "must be at most 1000 years")
  return millis
}

/**
 * Per-field options of `references` (v3's object form `{ user_id: {} }`): `{ maxSessions }`.
 * A value that is not an object (v3 ignored the values) means no options.
 */
export const resolveMaxSessions = (references: unknown, fields: ReadonlyArray<string>): ReadonlyArray<number> | SessionConfigError => {
  if (Array.isArray(references) || typeof references !== "object" || references === null) return fields.map(() => 0)
  const caps: Array<number> = []
  for (const field of fields) {
    const perField = (references as Record<string, unknown>)[field]
    if (typeof perField !== "object" || perField === null) {
      caps.push(0)
      continue
    }
    const unknown = checkOptionNames(perField, ["maxSessions"], undefined, `references.${field}.`)
    if (unknown !== undefined) return unknown
    const max = (perField as { maxSessions?: unknown }).maxSessions
    if (max === undefined) caps.push(0)
    else if (typeof max !== "number" || !Number.isInteger(max) || max < 1) {
      return configError(`references.${field}.maxSessions`, "must be an integer of at least 1")
    } else caps.push(max)
  }
  return caps
}

/** The controls from the store's options; `maxAgeMillis` is the resolved idle lifetime. */
export const resolveControls = (
  options: ControlOptions,
  maxAgeMillis: number,
  maxSessions: ReadonlyArray<number>
): Controls | SessionConfigError => {
  if (options.rolling !== undefined && typeof options.rolling !== "boolean") return configError("rolling", "must be a boolean")
  const rolling = options.rolling === true

  let rollingIntervalMillis = Math.max(1, Math.floor(maxAgeMillis / 10))
  if (options.rollingInterval !== undefined && options.rollingInterval !== null) {
    const interval = positiveDuration("rollingInterval", options.rollingInterval)
    if (typeof interval !== "number") return interval
    if (interval >= maxAgeMillis) {
      return configError("rollingInterval", `must be shorter than maxAge (${maxAgeMillis} ms), got ${interval} ms`)
    }
    rollingIntervalMillis = interval
  }

  let absoluteMaxAgeMillis: number | undefined
  if (options.absoluteMaxAge !== undefined && options.absoluteMaxAge !== null) {
    const absolute = positiveDuration("absoluteMaxAge", options.absoluteMaxAge)
    if (typeof absolute !== "number") return absolute
    if (absolute < maxAgeMillis) {
      return configError("absoluteMaxAge", `must be at least maxAge (${maxAgeMillis} ms): it bounds the idle lifetime, got ${absolute} ms`)
    }
    absoluteMaxAgeMillis = absolute
  }

  const track = options.track
  if (track !== undefined && (typeof track !== "object" || track === null || Array.isArray(track))) {
    return configError("track", "must be an object such as { userAgent: true, ip: true }")
  }
  if (track !== undefined) {
    const unknown = checkOptionNames(track, ["userAgent", "ip"], undefined, "track.")
    if (unknown !== undefined) return unknown
    for (const name of ["userAgent", "ip"] as const) {
      if (track[name] !== undefined && typeof track[name] !== "boolean") return configError(`track.${name}`, "must be a boolean")
    }
  }
  const hasCap = maxSessions.some((max) => max > 0)
  const tracking = track !== undefined
  const on = rolling || absoluteMaxAgeMillis !== undefined || hasCap || tracking
  return {
    on,
    rolling,
    rollingIntervalMillis,
    absoluteMaxAgeMillis,
    maxSessions,
    trackUserAgent: track?.userAgent === true,
    trackIp: track?.ip === true,
    observesReads: rolling || tracking || hasCap
  }
}

/** No controls: v3's behaviour. */
export const NO_CONTROLS = (references: number): Controls => ({
  on: false,
  rolling: false,
  rollingIntervalMillis: 1,
  absoluteMaxAgeMillis: undefined,
  maxSessions: Array.from({ length: references }, () => 0),
  trackUserAgent: false,
  trackIp: false,
  observesReads: false
})

/** What a request tells the store about its client, for `track`. */
export interface ClientInfo {
  readonly userAgent?: string | undefined
  readonly ip?: string | undefined
}

/** The reserved field/value pairs a write records for `client` (only what is tracked and known). */
export const clientPairs = (controls: Controls, client: ClientInfo | undefined): Array<string> => {
  const pairs: Array<string> = []
  if (client === undefined) return pairs
  if (controls.trackUserAgent && typeof client.userAgent === "string" && client.userAgent !== "") {
    pairs.push(USER_AGENT_FIELD, client.userAgent.slice(0, MAX_USER_AGENT_LENGTH))
  }
  if (controls.trackIp && typeof client.ip === "string" && client.ip !== "") pairs.push(IP_FIELD, client.ip.slice(0, MAX_IP_LENGTH))
  return pairs
}

/** A stored epoch-ms field as a number; `undefined` when absent or not a number. */
export const storedTime = (value: string | null | undefined): number | undefined => {
  if (value === undefined || value === null || value === "") return undefined
  const n = Number(value)
  return Number.isFinite(n) ? n : undefined
}

/** The absolute deadline (epoch ms) of a session created at `createdAt`; `undefined` without one. */
export const absoluteDeadline = (controls: Controls, createdAt: number | undefined): number | undefined =>
  controls.absoluteMaxAgeMillis === undefined || createdAt === undefined ? undefined : createdAt + controls.absoluteMaxAgeMillis

/** Whether a read at `now` of a session last seen at `lastSeenAt` is due its read-side update. */
export const readUpdateDue = (controls: Controls, lastSeenAt: number | undefined, now: number): boolean =>
  controls.observesReads && (lastSeenAt === undefined || now - lastSeenAt >= controls.rollingIntervalMillis)

/** A live session competing for a capped value: its id and last activity. */
export interface CapCandidate {
  readonly id: string
  readonly lastSeenAt: number
}

/**
 * Which sessions to evict so that, with the one joining, a value holds at most `max`
 * live sessions: the least recently active first (ties: the smaller id, so every
 * backend picks the same ones).
 */
export const evictionOrder = (others: ReadonlyArray<CapCandidate>, max: number): Array<string> => {
  const excess = others.length + 1 - max
  if (excess <= 0) return []
  return [...others]
    .sort((a, b) => a.lastSeenAt - b.lastSeenAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, excess)
    .map((candidate) => candidate.id)
}

/** A `SessionInfo` from stored values (strings as the hash holds them; "" or absent: none). */
export const sessionInfo = (
  controls: Controls,
  id: string,
  stored: {
    readonly createdAt?: string | null | undefined
    readonly lastSeenAt?: string | null | undefined
    readonly userAgent?: string | null | undefined
    readonly ip?: string | null | undefined
  },
  expiresAt: number | undefined
): SessionInfo => {
  const info: { -readonly [K in keyof SessionInfo]: SessionInfo[K] } = { id }
  const createdAt = storedTime(stored.createdAt)
  if (createdAt !== undefined) info.createdAt = createdAt
  const lastSeenAt = storedTime(stored.lastSeenAt)
  if (lastSeenAt !== undefined) info.lastSeenAt = lastSeenAt
  if (expiresAt !== undefined) info.expiresAt = expiresAt
  const absolute = absoluteDeadline(controls, createdAt)
  if (absolute !== undefined) info.absoluteExpiresAt = absolute
  if (stored.userAgent) info.userAgent = stored.userAgent
  if (stored.ip) info.ip = stored.ip
  return info
}

/** A `SessionLifetime` from the stored creation time and the idle expiry (absent keys omitted). */
export const sessionLifetime = (
  controls: Controls,
  createdAtStored: string | null | undefined,
  expiresAt: number | undefined
): SessionLifetime => {
  const lifetime: { -readonly [K in keyof SessionLifetime]: SessionLifetime[K] } = {}
  const createdAt = storedTime(createdAtStored)
  if (createdAt !== undefined) lifetime.createdAt = createdAt
  if (expiresAt !== undefined) lifetime.expiresAt = expiresAt
  const absolute = absoluteDeadline(controls, createdAt)
  if (absolute !== undefined) lifetime.absoluteExpiresAt = absolute
  return lifetime
}

/** Tells the app what a write evicted; what its callback throws is not the write's business. */
export const announceEvictions = (
  onEvict: ((eviction: SessionEviction) => void) | undefined,
  evictions: ReadonlyArray<SessionEviction>
): void => {
  if (onEvict === undefined) return
  for (const eviction of evictions) {
    try {
      onEvict(eviction)
    } catch {
      // ignored, as documented on the option
    }
  }
}
