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

/** The read-only commands the store sends outside scripts. */
export type Method = "hgetall" | "hmget" | "sscan"

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
  readonly next: (reply: unknown) => Action<A, E>
}

/** An Effect (a protocol of several commands); its value decides what comes next. */
export interface Deferred<A, E> {
  readonly _tag: "Deferred"
  readonly effect: Effect.Effect<unknown, E>
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
): Action<A, E> => ({ _tag: "Command", operation, script: lua, method: undefined, keys, args, next })

export const command = <A, E = never>(
  operation: string,
  method: Method,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>,
  next: (reply: unknown) => Action<A, E>
): Action<A, E> => ({ _tag: "Command", operation, script: undefined, method, keys, args, next })

export const fromEffect = <A, E>(effect: Effect.Effect<A, E>): Action<A, E> => ({
  _tag: "Deferred",
  effect,
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
      return { _tag: "Deferred", effect: action.effect, next: (value) => andThen(action.next(value), f) }
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
  next
})

export const map = <A, E, B>(action: Action<A, E>, f: (a: A) => B): Action<B, E> => andThen(action, (a) => done(f(a)))
