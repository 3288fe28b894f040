// A store or session operation as data: finished, failed, or waiting on one Redis
// call and what to do with its reply. Operations are written once as Steps; the
// Effect API interprets them with fibers (`toEffect`), and the Promise facade runs
// them directly (`runPromise`), because a fiber per call costs more CPU than the
// Redis command it waits on.
import { Cause, Effect, Exit } from "effect"
import type { Cluster, Redis } from "ioredis"
import type { RedisClientService } from "../RedisClient.js"
import type { RedisError } from "../SessionError.js"

export type Step<A, E> = Done<A> | Failed<E> | Call<A, E>

export interface Done<A> {
  readonly _tag: "Done"
  readonly value: A
}

export interface Failed<E> {
  readonly _tag: "Failed"
  readonly error: E
}

export interface Call<A, E> {
  readonly _tag: "Call"
  readonly operation: string
  /** One round trip (or a script); a rejection becomes `RedisError`. */
  readonly send: (client: Redis | Cluster) => Promise<unknown>
  readonly next: (reply: unknown) => Step<A, E>
  /** An Effect standing in for `send` (cluster protocols): its Exit is the reply. */
  readonly effect?: Effect.Effect<unknown> | undefined
  /**
   * The client's `timeout` bounds an operation's calls together; a call that restarts
   * the budget begins a new stretch (a page of a scan, which as a whole may take longer).
   */
  readonly restartsBudget: boolean
}

export const done = <A>(value: A): Step<A, never> => ({ _tag: "Done", value })

export const failed = <E>(error: E): Step<never, E> => ({ _tag: "Failed", error })

export const call = <R, A, E>(
  operation: string,
  send: (client: Redis | Cluster) => Promise<R>,
  next: (reply: R) => Step<A, E>,
  restartsBudget = false
): Step<A, E> => ({
  _tag: "Call",
  operation,
  send,
  next: next as (reply: unknown) => Step<A, E>,
  effect: undefined,
  restartsBudget
})

/** `Redis call → value`, the most common shape. */
export const request = <R, A>(operation: string, send: (client: Redis | Cluster) => Promise<R>, decode: (reply: R) => A): Step<A, never> =>
  call(operation, send, (reply: R) => done(decode(reply)))

// The same call, answered by `next`. Spelled out rather than spread: every Call keeps one
// object shape.
const continued = <A, E, B, E2>(step: Call<A, E>, next: (reply: unknown) => Step<B, E2>): Call<B, E2> => ({
  _tag: "Call",
  operation: step.operation,
  send: step.send,
  next,
  effect: step.effect,
  restartsBudget: step.restartsBudget
})

export const flatMap = <A, E, B, E2>(step: Step<A, E>, f: (a: A) => Step<B, E2>): Step<B, E | E2> => {
  switch (step._tag) {
    case "Done":
      return f(step.value)
    case "Failed":
      return step
    case "Call":
      return continued(step, (reply) => flatMap(step.next(reply), f))
  }
}

export const map = <A, E, B>(step: Step<A, E>, f: (a: A) => B): Step<B, E> => {
  switch (step._tag) {
    case "Done":
      return done(f(step.value))
    case "Failed":
      return step
    case "Call":
      return continued(step, (reply) => map(step.next(reply), f))
  }
}

/** A Step whose one call is a whole Effect (used where an operation is a multi-command protocol). */
export const fromEffect = <A, E>(operation: string, effect: Effect.Effect<A, E>): Step<A, E> => ({
  _tag: "Call",
  operation,
  send: () => Effect.runPromiseExit(effect),
  next: (exit) => {
    const result = exit as Exit.Exit<A, E>
    return Exit.isSuccess(result) ? done(result.value) : failed(Cause.squash(result.cause) as E)
  },
  effect: Effect.exit(effect),
  restartsBudget: false
})

/** Runs a Step as a Promise: no fiber; rejects with the typed error itself. */
export const runPromise = <A, E>(redis: RedisClientService, step: Step<A, E>): Promise<A> => {
  switch (step._tag) {
    case "Done":
      return Promise.resolve(step.value)
    case "Failed":
      return Promise.reject(step.error)
    case "Call":
      // One promise for the whole operation, settled from the reply callbacks.
      return new Promise<A>((resolve, reject) => drive(redis, step, resolve, reject, undefined))
  }
}

// The first call of an operation (or of a page) runs on the client's shared deadline
// list and starts the budget; the calls after it get what is left of it.
const budgetOf = (redis: RedisClientService, step: Call<unknown, unknown>, deadline: number | undefined) =>
  deadline === undefined || step.restartsBudget ? performance.now() + redis.timeoutMillis : deadline
const deadlineFor = (step: Call<unknown, unknown>, deadline: number | undefined) => (step.restartsBudget ? undefined : deadline)

const drive = <A, E>(
  redis: RedisClientService,
  step: Call<A, E>,
  resolve: (a: A) => void,
  reject: (error: unknown) => void,
  deadline: number | undefined
): void => {
  const budget = budgetOf(redis, step, deadline)
  const onReply = (reply: unknown) => {
    let next: Step<A, E>
    try {
      next = step.next(reply)
    } catch (defect) {
      return reject(defect)
    }
    if (next._tag === "Done") resolve(next.value)
    else if (next._tag === "Failed") reject(next.error)
    else drive(redis, next, resolve, reject, budget)
  }
  if (step.effect === undefined) redis.unsafeCall(step.operation, step.send, onReply, reject, deadlineFor(step, deadline))
  else step.send(redis.client).then(onReply, reject)
}

/** Interprets a Step as an Effect, its calls together bounded by the client's timeout. */
export const toEffect = <A, E>(redis: RedisClientService, step: Step<A, E>, deadline?: number): Effect.Effect<A, E | RedisError> => {
  switch (step._tag) {
    case "Done":
      return Effect.succeed(step.value)
    case "Failed":
      return Effect.fail(step.error)
    case "Call": {
      const budget = budgetOf(redis, step, deadline)
      if (step.effect !== undefined) return Effect.flatMap(step.effect, (reply) => toEffect(redis, step.next(reply), budget))
      // The reply goes straight to the next Step: one Effect resumption per Redis call, no flatMap.
      const call = step
      return Effect.async<A, E | RedisError>((resume) =>
        redis.unsafeCall(
          call.operation,
          call.send,
          (reply) => {
            let next: Step<A, E>
            try {
              next = call.next(reply)
            } catch (defect) {
              return resume(Effect.die(defect))
            }
            resume(next._tag === "Done" ? Effect.succeed(next.value) : toEffect(redis, next, budget))
          },
          (error) => resume(Effect.fail(error)),
          deadlineFor(call, deadline)
        )
      )
    }
  }
}

/** `Effect.suspend(() => toEffect(redis, thunk()))`: the Step is built (and inputs checked) when the Effect runs. */
export const suspend = <A, E>(redis: RedisClientService, thunk: () => Step<A, E>): Effect.Effect<A, E | RedisError> =>
  Effect.suspend(() => toEffect(redis, thunk()))
