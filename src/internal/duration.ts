import { Duration } from "effect"

/** A max age as v3 took it (milliseconds or an `ms`-style string) or as an Effect `Duration`. */
export type MaxAgeInput = number | string | Duration.Duration

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const WEEK = 7 * DAY
const YEAR = 365.25 * DAY
// `ms` never knew months; v3's own tests used "1 month", so we accept it as a twelfth of a year.
const MONTH = YEAR / 12

const UNITS: ReadonlyArray<readonly [ReadonlyArray<string>, number]> = [
  [["ms", "msec", "msecs", "millisecond", "milliseconds"], 1],
  [["s", "sec", "secs", "second", "seconds"], SECOND],
  [["m", "min", "mins", "minute", "minutes"], MINUTE],
  [["h", "hr", "hrs", "hour", "hours"], HOUR],
  [["d", "day", "days"], DAY],
  [["w", "week", "weeks"], WEEK],
  [["mo", "month", "months"], MONTH],
  [["y", "yr", "yrs", "year", "years"], YEAR]
]
const UNIT_MS = new Map<string, number>(UNITS.flatMap(([names, ms]) => names.map((n) => [n, ms] as const)))

/**
 * Parses the strings the `ms` package (v3's parser) accepts — `"28 days"`, `"2h"`,
 * `"1.5 hours"`, `"500"` — plus months. Returns `undefined` for anything else.
 */
export const parseDurationString = (input: string): number | undefined => {
  const match = /^\s*(-?(?:\d+)?\.?\d+)\s*([a-z]*)\s*$/i.exec(input)
  if (match === null || input.length > 100) return undefined
  const amount = Number(match[1])
  const unit = (match[2] ?? "").toLowerCase()
  const factor = unit === "" ? 1 : UNIT_MS.get(unit)
  return factor === undefined ? undefined : amount * factor
}

/**
 * The longest max age accepted: 1000 years. Redis stores expiry times as 64-bit
 * milliseconds, and Lua hands numbers from 1e17 up to Redis as "1e+17" — which
 * `PEXPIRE` refuses halfway through a script.
 */
export const MAX_AGE_LIMIT_MS = Math.round(1000 * YEAR)

/**
 * A max age in whole milliseconds, or `undefined` when the input is not a
 * duration from one millisecond to {@link MAX_AGE_LIMIT_MS}.
 */
export const toMillis = (input: MaxAgeInput): number | undefined => {
  let ms: number | undefined
  if (typeof input === "number") ms = input
  else if (typeof input === "string") ms = parseDurationString(input)
  else if (Duration.isDuration(input)) ms = Duration.toMillis(input)
  if (ms === undefined || !Number.isFinite(ms)) return undefined
  const whole = Math.round(ms)
  return whole >= 1 && whole <= MAX_AGE_LIMIT_MS ? whole : undefined
}
