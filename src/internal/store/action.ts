// What an operation does once its inputs are checked: answer at once, send one Redis
// command (a descriptor: name, script or method, keys, args, reply decoder), or run an
// Effect (multi-step protocols). The Effect API and the Promise facade run the same
// actions (see run.ts); the facade sends a command without a fiber, because a fiber per
// call costs more CPU than the command it waits on. Pure data: no I/O here.
import type { Effect } from "effect"
import type { LuaScript } from "../../LuaScript.js"
import type { InvalidSessionData, InvalidSessionId } from "../../SessionError.js"

export type Action<A, E> = Done<A> | Failed<E> | Command<A, E> | Deferred<A, E>

export interface Done<A> {
  readonly _tag: "Done"
  readonly value: A
}

export interface Failed<E> {
  readonly _tag: "Failed"
  readonly error: E
}

/** The commands the store sends outside scripts; `all`: the command's `parts`, sent at once. */
export type Method = "hgetall" | "hmget" | "sscan" | "srem" | "all"

/** One Redis command; its reply decides what comes next (usually `done(value)`). */
export interface Command<A, E> {
  readonly _tag: "Command"
  /** The operation it belongs to (`SessionStore.get`): named in errors. */
  readonly operation: string
  /** The script to run (EVALSHA), or else the `method` to call. */
  readonly script: LuaScript | undefined
  readonly method: Method | undefined
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<string | number>
  /** With method `all`: the commands sent together (to whichever nodes their keys are on); the reply is theirs, in order. */
  readonly parts: ReadonlyArray<Command<unknown, unknown>> | undefined
  readonly next: (reply: unknown) => Action<A, E>
}

/** An Effect (a protocol of several commands); its value decides what comes next. */
export interface Deferred<A, E> {
  readonly _tag: "Deferred"
  readonly effect: Effect.Effect<unknown, E>
  /**
   * The same protocol as an action of commands, when it is one (its `effect` runs it):
   * the Promise runner drives it with callbacks instead of running `effect` in a fiber.
   */
  readonly steps: (() => Action<unknown, E>) | undefined
  readonly next: (value: unknown) => Action<A, E>
}

export const done = <A>(value: A): Action<A, never> => ({ _tag: "Done", value })

export const failed = <E>(error: E): Action<never, E> => ({ _tag: "Failed", error })

export const script = <A, E = never>(
  operation: string,
  lua: LuaScript,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>,
  next: (reply: unknown) => Action<A, E>
): Action<A, E> => ({ _tag: "Command", operation, script: lua, method: undefined, keys, args, parts: undefined, next })

export const command = <A, E = never>(
  operation: string,
  method: Method,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>,
  next: (reply: unknown) => Action<A, E>
): Action<A, E> => ({ _tag: "Command", operation, script: undefined, method, keys, args, parts: undefined, next })

/** One command to send with others ({@link all}): a script (EVALSHA), or else `method`. */
export const part = (
  operation: string,
  lua: LuaScript | undefined,
  method: Method | undefined,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>
): Command<unknown, never> => ({ _tag: "Command", operation, script: lua, method, keys, args, parts: undefined, next: done })

/**
 * Several commands sent at once, each routed on its own (one round trip for all of them,
 * on a cluster too); their replies, in order, decide what comes next. No command: `next([])` at once.
 */
export const all = <A, E>(
  operation: string,
  parts: ReadonlyArray<Command<unknown, unknown>>,
  next: (replies: ReadonlyArray<unknown>) => Action<A, E>
): Action<A, E> => {
  if (parts.length === 0) return next([])
  if (parts.length === 1) return continued(parts[0]!, (reply) => next([reply]))
  const then = next as (reply: unknown) => Action<A, E>
  return { _tag: "Command", operation, script: undefined, method: "all", keys: [], args: [], parts, next: then }
}

const partsOf = (command: Command<unknown, unknown>): ReadonlyArray<Command<unknown, unknown>> =>
  command.parts === undefined ? [command] : command.parts

/**
 * Both actions at once, step by step: each round trip sends the next command of each (as one
 * {@link all}), so two protocols of n steps cost n round trips, not 2n. Their values as a pair;
 * the first failure fails it (the other stops there). A Deferred step runs on its own.
 */
export const both = <A, E, B, E2>(operation: string, a: Action<A, E>, b: Action<B, E2>): Action<readonly [A, B], E | E2> => {
  if (a._tag === "Failed") return a
  if (b._tag === "Failed") return b
  if (a._tag === "Done") return map(b, (vb) => [a.value, vb] as const)
  if (b._tag === "Done") return map(a, (va) => [va, b.value] as const)
  if (a._tag === "Deferred") return andThen(a, (va) => both(operation, done(va), b))
  if (b._tag === "Deferred") return andThen(b, (vb) => both(operation, a, done(vb)))
  const first = partsOf(a).length
  return all(operation, [...partsOf(a), ...partsOf(b)], (replies) =>
    both(
      operation,
      a.next(a.parts === undefined ? replies[0] : replies.slice(0, first)),
      b.next(b.parts === undefined ? replies[first] : replies.slice(first))
    )
  )
}

export const fromEffect = <A, E>(effect: Effect.Effect<A, E>): Action<A, E> => ({
  _tag: "Deferred",
  effect,
  steps: undefined,
  next: done as (value: unknown) => Action<A, E>
})

/** `ok` when a rule passed, else the rule's error (a tagged error) as a failed action. */
export const checked = <P, A, E>(
  plan: P | InvalidSessionId | InvalidSessionData,
  ok: (plan: P) => Action<A, E>
): Action<A, E | InvalidSessionId | InvalidSessionData> => (isInputError(plan) ? failed(plan) : ok(plan as P))

/** {@link checked} for the rules that can only refuse the data (`rules.reference`). */
export const checkedData = <P, A, E>(plan: P | InvalidSessionData, ok: (plan: P) => Action<A, E>): Action<A, E | InvalidSessionData> =>
  isInputError(plan) ? failed(plan as InvalidSessionData) : ok(plan as P)

const isInputError = (value: unknown): value is InvalidSessionId | InvalidSessionData =>
  typeof value === "object" && value !== null && "_tag" in value

/** Then `f` on the value: composed into the action's continuation, so no runner sees an extra step. */
export const andThen = <A, E, B, E2>(action: Action<A, E>, f: (a: A) => Action<B, E2>): Action<B, E | E2> => {
  switch (action._tag) {
    case "Done":
      return f(action.value)
    case "Failed":
      return action
    case "Command":
      return continued(action, (reply) => andThen(action.next(reply), f))
    case "Deferred":
      return { _tag: "Deferred", effect: action.effect, steps: action.steps, next: (value) => andThen(action.next(value), f) }
  }
}

// The same command with another continuation. Spelled out, not spread: every command
// keeps one object shape (V8 is slower on objects built by a spread plus a key).
const continued = <A, E, B, E2>(command: Command<A, E>, next: (reply: unknown) => Action<B, E2>): Command<B, E2> => ({
  _tag: "Command",
  operation: command.operation,
  script: command.script,
  method: command.method,
  keys: command.keys,
  args: command.args,
  parts: command.parts,
  next
})

export const map = <A, E, B>(action: Action<A, E>, f: (a: A) => B): Action<B, E> => andThen(action, (a) => done(f(a)))
