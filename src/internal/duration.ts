// The one duration grammar of every duration option and argument (`maxAge`, `timeout`,
// `connectTimeout`, a call's `maxAge`):
//
//  - a number is milliseconds;
//  - a string is what the `ms` package parses (v3's parser: "2h", "28 days", "1.5 hours",
//    "500"), else what Effect's `Duration.decodeUnknown` parses ("250 millis",
//    "2 seconds"); anything else, "1 month" included (v3 silently used 28 days there,
//    because `ms` answers undefined), is no duration;
//  - any other `Duration.DurationInput` (a `Duration`, bigint nanoseconds, a
//    `[seconds, nanos]` pair) is decoded by Effect.
//
// Range rules are the callers': see `toMillis` (maxAge) and options.ts (timeouts).
import { Duration } from "effect"
import ms from "ms"

/**
 * A duration as this library takes it: milliseconds, an `ms` string (`"2h"`,
 * `"28 days"`), an Effect duration string (`"250 millis"`) or a `Duration.DurationInput`.
 */
export type DurationInput = Duration.DurationInput | string

/** A max age as v3 took it (milliseconds or an `ms`-style string) or as an Effect `Duration`. */
export type MaxAgeInput = DurationInput

/**
 * The milliseconds a duration string stands for, by `ms` and then by Effect's grammar, or
 * `undefined` when neither parses it. The number may be 0, negative or fractional.
 */
export const parseDurationString = (input: string): number | undefined => {
  // `ms` throws on "" (and answers undefined beyond 100 characters).
  if (input === "") return undefined
  const parsed = ms(input as ms.StringValue) as number | undefined
  if (parsed !== undefined) return parsed
  const decoded = Duration.decodeUnknown(input)
  return decoded._tag === "Some" ? Duration.toMillis(decoded.value) : undefined
}

/**
 * The milliseconds any input of the grammar stands for (`Infinity` for
 * `Duration.infinity`), or `undefined` when it is no duration at all. A number is
 * returned as it is (NaN and negatives included): the range is the caller's to check.
 */
export const durationMillis = (input: unknown): number | undefined => {
  if (typeof input === "number") return input
  if (typeof input === "string") return parseDurationString(input)
  const decoded = Duration.decodeUnknown(input)
  return decoded._tag === "Some" ? Duration.toMillis(decoded.value) : undefined
}

/**
 * The longest max age accepted: 1000 years (of 365.25 days, as `ms` counts them). Redis
 * stores expiry times as 64-bit milliseconds, and Lua hands numbers from 1e17 up to
 * Redis as "1e+17" — which `PEXPIRE` refuses halfway through a script.
 */
export const MAX_AGE_LIMIT_MS = Math.round(ms("1000 years"))

/**
 * A max age in whole milliseconds, or `undefined` when the input is not a
 * duration from one millisecond to {@link MAX_AGE_LIMIT_MS}.
 */
export const toMillis = (input: MaxAgeInput): number | undefined => {
  const millis = durationMillis(input)
  if (millis === undefined || !Number.isFinite(millis)) return undefined
  const whole = Math.round(millis)
  return whole >= 1 && whole <= MAX_AGE_LIMIT_MS ? whole : undefined
}

/** The longest timer Node runs as asked: a longer one fires after 1 ms (TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * A timeout in whole milliseconds (rounded up), or why the input is not one: a positive
 * duration of at most {@link MAX_TIMER_MS}. The reason has no "got …": callers add it.
 */
export const timeoutMillis = (input: unknown): number | { readonly reason: string } => {
  const millis = durationMillis(input)
  if (millis === undefined) {
    return { reason: `must be a duration (milliseconds, a string such as "2s", "2 seconds" or "1.5 hours", or an Effect Duration)` }
  }
  if (!(millis > 0) || !Number.isFinite(millis)) return { reason: "must be a positive, finite duration" }
  // Node fires a longer timer after 1 ms: every call would time out.
  if (millis > MAX_TIMER_MS) return { reason: `must be at most ${MAX_TIMER_MS} ms (about 24.8 days, Node's timer limit)` }
  return Math.ceil(millis)
}
