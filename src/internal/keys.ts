// Key layout, byte for byte the one koa-redis-session-sets 3.0.0 writes, so a v3
// deployment upgrades in place:
//   session hash   `${prefix}:{${id}}`
//   reference set  `${prefix}:${field}:{${value}}`
// The braces are literal: Redis Cluster hash tags (v3.0.0, "key: use hash tags for
// cluster support"), so a key's slot is decided by the id or the value alone.
// Referenced field names may not contain `:`, `{` or `}` (checked with the options),
// which keeps every (field, value) pair on a key of its own.
//
// The standalone Lua scripts receive `${prefix}:` as a key ("key base") and derive
// session and reference keys from it with `keysLua` below, because the ids and
// values involved are only known inside the atomic script. The two definitions
// here and there must stay the same layout.

/** The prefix options resolve to: `prefix`, else `koa-redis-session-sets:<namespace>`, else `""`. */
export const resolvePrefix = (options: { readonly prefix?: string | undefined; readonly namespace?: string | undefined }): string => {
  if (options.prefix) return options.prefix
  if (options.namespace) return `koa-redis-session-sets:${options.namespace}`
  return ""
}

export const keyBase = (prefix: string): string => `${prefix}:`

export const sessionKey = (prefix: string, id: string): string => `${prefix}:{${id}}`

export const referenceKey = (prefix: string, field: string, value: string): string => `${prefix}:${field}:{${value}}`

/**
 * Where `deleteByReference` moves a reference set while it revokes its members: the ids
 * of the sessions that held the value when the revoke started. Writes check it inside
 * their scripts, so a session being revoked can no longer change, or move to a new id.
 * Same hash tag as the set (same slot); it never ends in `}`, so no reference key equals it.
 */
export const revokingKey = (prefix: string, field: string, value: string): string => `${referenceKey(prefix, field, value)}:revoking`

/** Characters a referenced field name may not contain: they would make two (field, value) pairs share a key. */
export const RESERVED_IN_REFERENCE_FIELD = /[:{}]/

/** The same layout in Lua, from the key base. */
export const keysLua = `
local function sessionKeyOf(base, id)
  return base .. '{' .. id .. '}'
end

local function referenceKeyOf(base, field, value)
  return base .. field .. ':{' .. value .. '}'
end

local function revokingKeyOf(base, field, value)
  return referenceKeyOf(base, field, value) .. ':revoking'
end
`

/**
 * Cluster mode: written by `deleteByReference` for an id it revoked (or found without a
 * hash), with a TTL of a grace period; while it lives, nothing may create a session
 * under that id, so an in-flight `regenerate` (or a first write) cannot bring it back.
 * Same hash tag as the session (same slot); it never ends in `}`, so no other key equals it.
 */
export const tombstoneKey = (prefix: string, id: string): string => `${sessionKey(prefix, id)}:revoked`

/**
 * Cluster mode: which referenced values the session left, and when (a hash of
 * `${field}:${value}` → unix ms), so that a revoke that froze the value's set before the
 * session moved away still recognises it. It lives and dies with the session hash.
 */
export const leftKey = (prefix: string, id: string): string => `${sessionKey(prefix, id)}:left`
