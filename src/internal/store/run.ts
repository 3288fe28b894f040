// The two interpreters of an Action: as an Effect (the Effect API) and with callbacks
// (the Promise facade, no fiber per command). A command's calls share one budget:
// the client's `timeout` bounds the chain of commands an action sends, not each one.
import { Cause, Effect, Exit } from "effect"
import type { Cluster, Redis } from "ioredis"
import * as LuaScript from "../../LuaScript.js"
import type { RedisClientService } from "../../RedisClient.js"
import type { RedisError } from "../../SessionError.js"
import type { Action, Command } from "./action.js"
import { done } from "./action.js"
import type { OperationTelemetry, Telemetry } from "./observability.js"
import { isTraced, observed, record, withSessionIdHash } from "./observability.js"

const sendTo = (client: Redis | Cluster, command: Command<unknown, unknown>): Promise<unknown> => {
  const { keys, args } = command
  if (command.script !== undefined) return LuaScript.evaluate(client, command.script, keys, args)
  switch (command.method) {
    case "hgetall":
      return client.hgetall(keys[0]!)
    case "hmget":
      return client.hmget(keys[0]!, ...(args as Array<string>))
    case "srem":
      return client.srem(keys[0]!, ...(args as Array<string>))
    case "all":
      return Promise.all(command.parts!.map((part) => sendTo(client, part)))
    default:
      return client.sscan(keys[0]!, args[0] as string, "COUNT", args[1] as number)
  }
}

const send =
  (command: Command<unknown, unknown>) =>
  (client: Redis | Cluster): Promise<unknown> =>
    sendTo(client, command)

const clientOf = (redis: RedisClientService | undefined): RedisClientService => {
  if (redis === undefined) throw new Error("a Redis command in a store without a Redis client")
  return redis
}

/** Runs an action as an Effect, in the calling fiber (so its Clock, tracer and interruption apply). */
export const toEffect = <A, E>(
  redis: RedisClientService | undefined,
  action: Action<A, E>,
  deadline?: number
): Effect.Effect<A, E | RedisError> => {
  switch (action._tag) {
    case "Done":
      return Effect.succeed(action.value)
    case "Failed":
      return Effect.fail(action.error)
    case "Deferred":
      return Effect.flatMap(action.effect, (value) => toEffect(redis, action.next(value), deadline))
    case "Command": {
      const client = clientOf(redis)
      const budget = deadline ?? performance.now() + client.timeoutMillis
      // The reply goes straight to the next action: one Effect resumption per Redis call.
      return sendCommand(client, action, deadline, (next) =>
        next._tag === "Done" ? Effect.succeed(next.value) : toEffect(redis, next, budget)
      )
    }
  }
}

/** Sends one command; `then` turns the action its reply leads to into the Effect to resume with. */
// With `operation`, records its metrics when the reply (or the failure) comes.
const sendCommand = <A, E, B, E2>(
  client: RedisClientService,
  action: Command<A, E>,
  deadline: number | undefined,
  then: (next: Action<A, E>) => Effect.Effect<B, E2 | RedisError>,
  operation?: OperationTelemetry
): Effect.Effect<B, E2 | RedisError> =>
  Effect.async<B, E2 | RedisError>((resume) => {
    const started = operation === undefined ? 0 : performance.now()
    client.unsafeCall(
      action.operation,
      send(action),
      (reply) => {
        let next: Action<A, E>
        try {
          next = action.next(reply)
        } catch (defect) {
          if (operation !== undefined) record(operation, started, false, undefined)
          return resume(Effect.die(defect))
        }
        if (operation !== undefined) record(operation, started, next._tag !== "Failed", undefined)
        resume(then(next))
      },
      (error) => {
        if (operation !== undefined) record(operation, started, false, undefined)
        resume(Effect.fail(error))
      },
      deadline
    )
  })

/**
 * A protocol of commands as one step (a Deferred): the Effect runners run it as an Effect
 * (in the calling fiber, one span and one set of metrics for the whole protocol), the
 * Promise runner drives its commands with callbacks, no fiber. `steps` is called on each
 * run (a protocol may keep state while it runs); its calls share one `timeout`.
 */
export const stepwise = <A, E>(redis: RedisClientService, steps: () => Action<A, E>): Action<A, E | RedisError> => ({
  _tag: "Deferred",
  effect: Effect.suspend(() => toEffect(redis, steps())),
  steps,
  next: done as (value: unknown) => Action<A, E | RedisError>
})

// A store operation is one step of an action at its top level: a command, or a protocol
// (an Effect), which the service labels with its operation (a command names its own).
const protocols = new WeakMap<Effect.Effect<unknown, unknown>, string>()

/** Names the protocol behind an action, for spans and metrics (the action itself, unchanged). */
export const labelled = <A, E>(operation: string, action: Action<A, E>): Action<A, E> => {
  if (action._tag === "Deferred") protocols.set(action.effect, operation)
  return action
}

// The telemetry of the stores over each client, for the Promise runner (its metrics have
// no per-store tag, so stores sharing a client share it).
const byClient = new WeakMap<RedisClientService, Telemetry>()

/** Makes `runPromise` over `redis` count its operations in `telemetry`'s metrics. */
export const observeClient = (redis: RedisClientService, telemetry: Telemetry): void => {
  if (!byClient.has(redis)) byClient.set(redis, telemetry)
}

const operationOf = (telemetry: Telemetry, step: Action<unknown, unknown>): OperationTelemetry | undefined => {
  if (step._tag === "Command") return telemetry.of(step.operation)
  if (step._tag === "Deferred") {
    const name = protocols.get(step.effect)
    return name === undefined ? undefined : telemetry.of(name)
  }
  return undefined
}

/**
 * {@link toEffect} with each store operation (each step of the action at its top level)
 * in a span named after it, with its metrics: the Effect API's runner.
 */
export const toObservedEffect = <A, E>(
  redis: RedisClientService | undefined,
  telemetry: Telemetry,
  action: Action<A, E>,
  deadline?: number,
  // The caller saw that the fiber has no tracer: no need to look again per command.
  untraced = false
): Effect.Effect<A, E | RedisError> => {
  switch (action._tag) {
    case "Done":
      return Effect.succeed(action.value)
    case "Failed":
      return Effect.fail(action.error)
    case "Deferred": {
      const operation = operationOf(telemetry, action as Action<unknown, unknown>)
      const step = operation === undefined ? action.effect : observed(operation, action.effect)
      return Effect.flatMap(step, (value) => toObservedEffect(redis, telemetry, action.next(value), deadline, untraced))
    }
    case "Command": {
      const client = clientOf(redis)
      const budget = deadline ?? performance.now() + client.timeoutMillis
      const operation = telemetry.of(action.operation)
      const after = (next: Action<A, E>) =>
        next._tag === "Done" ? Effect.succeed(next.value) : toObservedEffect(redis, telemetry, next, budget, untraced)
      if (untraced) return sendCommand(client, action, deadline, after, operation)
      return Effect.withFiberRuntime((fiber) => {
        // Without a tracer there is no span to run the reply's continuation in: the
        // metrics are recorded in the reply's callback, as the Promise runner does.
        if (!isTraced(fiber)) return sendCommand(client, action, deadline, after, operation)
        // The reply's continuation runs inside the span: a refused reply fails the operation.
        const step = sendCommand(client, action, deadline, (next): Effect.Effect<Action<A, E>, E> =>
          next._tag === "Failed" ? Effect.fail(next.error) : Effect.succeed(next)
        )
        return Effect.flatMap(observed(operation, withSessionIdHash(fiber, telemetry, action.keys, step)), after)
      })
    }
  }
}

/** Runs an action as a Promise that rejects with the typed error itself (never a FiberFailure). */
export const runPromise = <A, E>(redis: RedisClientService | undefined, action: Action<A, E>): Promise<A> => {
  if (action._tag === "Done") return Promise.resolve(action.value)
  if (action._tag === "Failed") return Promise.reject(action.error)
  return new Promise<A>((resolve, reject) => drive(redis, action, resolve, reject, undefined, false))
}

// `inner`: the commands of a protocol (stepwise), whose metrics are the protocol's, not theirs.
const drive = <A, E>(
  redis: RedisClientService | undefined,
  action: Action<A, E>,
  resolve: (a: A) => void,
  reject: (error: unknown) => void,
  deadline: number | undefined,
  inner: boolean
): void => {
  const proceed = (next: (value: unknown) => Action<A, E>, value: unknown, budget: number | undefined) => {
    let following: Action<A, E>
    try {
      following = next(value)
    } catch (defect) {
      return reject(defect)
    }
    drive(redis, following, resolve, reject, budget, inner)
  }
  switch (action._tag) {
    case "Done":
      return resolve(action.value)
    case "Failed":
      return reject(action.error)
    case "Deferred": {
      const telemetry = redis === undefined || inner ? undefined : byClient.get(redis)
      const operation = telemetry === undefined ? undefined : operationOf(telemetry, action as Action<unknown, unknown>)
      const started = operation === undefined ? 0 : performance.now()
      const steps = action.steps
      if (steps !== undefined) {
        // Its commands with callbacks, within their own `timeout` (as its Effect is).
        let first: Action<unknown, E>
        try {
          first = steps()
        } catch (defect) {
          return reject(defect)
        }
        return drive(
          redis,
          first,
          (value) => {
            if (operation !== undefined) record(operation, started, true, value)
            proceed(action.next, value, deadline)
          },
          (error) => {
            if (operation !== undefined) record(operation, started, false, undefined)
            reject(error)
          },
          undefined,
          true
        )
      }
      return void Effect.runPromiseExit(action.effect).then((exit) => {
        if (operation !== undefined) record(operation, started, Exit.isSuccess(exit), Exit.isSuccess(exit) ? exit.value : undefined)
        Exit.isSuccess(exit) ? proceed(action.next, exit.value, deadline) : reject(Cause.squash(exit.cause))
      })
    }
    case "Command": {
      const client = clientOf(redis)
      const started = performance.now()
      const budget = deadline ?? started + client.timeoutMillis
      const telemetry = inner ? undefined : byClient.get(client)
      if (telemetry === undefined)
        return client.unsafeCall(action.operation, send(action), (reply) => proceed(action.next, reply, budget), reject, deadline)
      // Metrics only (no span: no fiber here).
      const operation = telemetry.of(action.operation)
      return client.unsafeCall(
        action.operation,
        send(action),
        (reply) => {
          let following: Action<A, E>
          try {
            following = action.next(reply)
          } catch (defect) {
            record(operation, started, false, undefined)
            return reject(defect)
          }
          record(operation, started, following._tag !== "Failed", undefined)
          drive(redis, following, resolve, reject, budget, false)
        },
        (error) => {
          record(operation, started, false, undefined)
          reject(error)
        },
        deadline
      )
    }
  }
}
