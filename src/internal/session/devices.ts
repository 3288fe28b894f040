// The device list a request may see of its own account: every live session of the
// current session's value, each under an opaque handle instead of its id. A handle is an
// HMAC of the listed id keyed by the current session's id, so it is stable for as long as
// the viewer's id is, means nothing to another session, and cannot be replayed as a cookie.
import { createHmac, timingSafeEqual } from "node:crypto"
import type { SessionInfo } from "../store/types.js"

/**
 * A session of the current account, as the current request may see it: what
 * `listSessions` reports of it (times, device), with a handle in place of its id.
 *
 * @since 4.0.0
 * @category models
 */
export interface SessionDevice extends Omit<SessionInfo, "id"> {
  /** Names this session to `revokeSession`; opaque, never the session's id. */
  readonly handle: string
  /** Whether it is the session of the request that listed it. */
  readonly current: boolean
}

/** The handle of session `id`, listed under `field`, as the session `viewer` sees it. */
export const handleOf = (viewer: string, field: string, id: string): string =>
  createHmac("sha256", viewer).update(field).update("\0").update(id).digest("base64url").slice(0, 27)

/** Whether `handle` names session `id` (listed under `field`) for `viewer`, compared in constant time. */
export const isHandleOf = (handle: string, viewer: string, field: string, id: string): boolean => {
  const expected = Buffer.from(handleOf(viewer, field, id))
  const given = Buffer.from(handle)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** The device entry of a listed session: its handle instead of its id. */
export const deviceOf = (viewer: string, field: string, info: SessionInfo): SessionDevice => {
  const { id, ...rest } = info
  return { handle: handleOf(viewer, field, id), current: id === viewer, ...rest }
}
