// Key layout, byte for byte the one v3 used, so a v3 deployment upgrades in place:
//   session hash   `${prefix}:${id}`
//   reference set  `${prefix}:${field}:${value}`
// The Lua scripts receive `${prefix}:` as a key ("key base") and derive the keys
// of old reference values from it, because those values are only known inside
// the atomic script.

/** The prefix options resolve to: `prefix`, else `koa-redis-session-sets:<namespace>`, else `""`. */
export const resolvePrefix = (options: { readonly prefix?: string | undefined; readonly namespace?: string | undefined }): string => {
  if (options.prefix) return options.prefix
  if (options.namespace) return `koa-redis-session-sets:${options.namespace}`
  return ""
}

export const keyBase = (prefix: string): string => `${prefix}:`

export const sessionKey = (prefix: string, id: string): string => `${prefix}:${id}`

export const referenceKey = (prefix: string, field: string, value: string): string => `${prefix}:${field}:${value}`
