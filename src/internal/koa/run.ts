// `SessionMiddleware.run(ctx, effect)`: an Effect with the request's Session, on the
// factory's runtime, interrupted when the client goes away.
import { Cause, Context, Effect, Exit, FiberId, FiberRef, FiberRefs, Runtime } from "effect"
import type { ManagedRuntime } from "effect"
import { Session } from "../../Session.js"
import { ClientClosedRequest } from "../../SessionError.js"
import type { SessionService } from "../session/types.js"
import type { KoaContextLike } from "./types.js"

// R: what the runtime provides (SessionStore and RedisClient, or SessionStore alone for a given store).
export const makeRun = <R>(runtime: ManagedRuntime.ManagedRuntime<R, never>, sessionOf: (ctx: KoaContextLike) => SessionService) => {
  // The request's runtime: the shared one plus its Session. Building it directly costs
  // about a sixth of `Effect.provideService`, which goes through a FiberRef per call.
  let base: Runtime.Runtime<R> | undefined
  const requestRuntime = (session: SessionService): Runtime.Runtime<R | Session> => {
    // Captured inside `runSync`, whose fiber runs on a synchronous scheduler: that is
    // dropped, so request fibers yield to Effect's default one directly.
    base ??= ((captured) => Runtime.make({ ...captured, fiberRefs: FiberRefs.delete(captured.fiberRefs, FiberRef.currentScheduler) }))(
      runtime.runSync(Effect.runtime<R>())
    )
    return Runtime.make({
      context: Context.add(base.context, Session, session),
      runtimeFlags: base.runtimeFlags,
      fiberRefs: base.fiberRefs
    })
  }
  // One fiber per call, interrupted if the client goes away before the response is
  // finished. Rejects with the typed error itself (squashed), never a FiberFailure.
  const run = <A, E>(ctx: KoaContextLike, effect: Effect.Effect<A, E, R | Session>): Promise<A> =>
    new Promise<A>((resolve, reject) => {
      const fiber = Runtime.runFork(requestRuntime(sessionOf(ctx)), effect)
      const res = ctx.res
      let clientGone = false
      const onClose = () => {
        if (res.writableFinished) return
        clientGone = true
        fiber.unsafeInterruptAsFork(FiberId.none)
      }
      res?.once("close", onClose)
      fiber.addObserver((exit) => {
        res?.off("close", onClose)
        if (Exit.isSuccess(exit)) resolve(exit.value)
        // Nobody is left to answer: an error Koa neither logs nor sends (expose, 499).
        else if (clientGone && Cause.isInterruptedOnly(exit.cause)) reject(new ClientClosedRequest())
        else reject(Cause.squash(exit.cause))
      })
    })
  // run() after close() fails on the disposed runtime, as it would without the cache.
  const forget = () => {
    base = undefined
  }
  return { run, forget }
}
