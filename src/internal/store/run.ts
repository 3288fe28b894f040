// The two interpreters of an Action: as an Effect (the Effect API) and with callbacks
// (the Promise facade, no fiber per command). A command's calls share one budget:
// the client's `timeout` bounds the chain of commands an action sends, not each one.
import { Cause, Effect, Exit } from "effect"
import type { Cluster, Redis } from "ioredis"
import * as LuaScript from "../../LuaScript.js"
import type { RedisClientService } from "../../RedisClient.js"
import type { RedisError } from "../../SessionError.js"
import type { Action, Command } from "./action.js"

const send =
  (command: Command<unknown, unknown>) =>
  (client: Redis | Cluster): Promise<unknown> => {
    const { keys, args } = command
    if (command.script !== undefined) return LuaScript.evaluate(client, command.script, keys, args)
    switch (command.method) {
      case "hgetall":
        return client.hgetall(keys[0]!)
      case "hmget":
        return client.hmget(keys[0]!, ...(args as Array<string>))
      default:
        return client.sscan(keys[0]!, args[0] as string, "COUNT", args[1] as number)
    }
  }

const clientOf = (redis: RedisClientService | undefined): RedisClientService => {
  if (redis === undefined) throw new Error("a Redis command in a store without a Redis client")
  return redis
}

/** Runs an action as an Effect, in the calling fiber (so its Clock, tracer and interruption apply). */
export const toEffect = <A, E>(redis: RedisClientService | undefined, action: Action<A, E>, deadline?: number): Effect.Effect<A, E | RedisError> => {
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
      return Effect.async<A, E | RedisError>((resume) =>
        client.unsafeCall(
          action.operation,
          send(action),
          (reply) => {
            let next: Action<A, E>
            try {
              next = action.next(reply)
            } catch (defect) {
              return resume(Effect.die(defect))
            }
            resume(next._tag === "Done" ? Effect.succeed(next.value) : toEffect(redis, next, budget))
          },
          (error) => resume(Effect.fail(error)),
          deadline
        )
      )
    }
  }
}

/** Runs an action as a Promise that rejects with the typed error itself (never a FiberFailure). */
export const runPromise = <A, E>(redis: RedisClientService | undefined, action: Action<A, E>): Promise<A> => {
  if (action._tag === "Done") return Promise.resolve(action.value)
  if (action._tag === "Failed") return Promise.reject(action.error)
  return new Promise<A>((resolve, reject) => drive(redis, action, resolve, reject, undefined))
}

const drive = <A, E>(
  redis: RedisClientService | undefined,
  action: Action<A, E>,
  resolve: (a: A) => void,
  reject: (error: unknown) => void,
  deadline: number | undefined
): void => {
  const proceed = (next: (value: unknown) => Action<A, E>, value: unknown, budget: number | undefined) => {
    let following: Action<A, E>
    try {
      following = next(value)
    } catch (defect) {
      return reject(defect)
    }
    drive(redis, following, resolve, reject, budget)
  }
  switch (action._tag) {
    case "Done":
      return resolve(action.value)
    case "Failed":
      return reject(action.error)
    case "Deferred":
      return void Effect.runPromiseExit(action.effect).then((exit) =>
        Exit.isSuccess(exit) ? proceed(action.next, exit.value, deadline) : reject(Cause.squash(exit.cause))
      )
    case "Command": {
      const client = clientOf(redis)
      const budget = deadline ?? performance.now() + client.timeoutMillis
      return client.unsafeCall(action.operation, send(action), (reply) => proceed(action.next, reply, budget), reject, deadline)
    }
  }
}
