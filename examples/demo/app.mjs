// The demo app: sign in with a user name, see every live session of that user, sign
// out this device, the others, one of them, or everywhere. Plain Koa and this library.
//
// CSRF. Every form carries a token in a hidden field and every POST is refused with 403,
// changing nothing, unless that token is valid and the request comes from this site's
// own pages (Origin, or Sec-Fetch-Site, says same-origin).
//  - Signed in, the token is the session's (`ctx.session.createCSRFToken()`), checked
//    with `ctx.session.verifyCSRFToken(token)`.
//  - Signed out, there is no session and the sign-in page must not create one (it would
//    be a Redis key and a cookie for every visitor, bot or not), so the sign-in form's
//    token is stateless: a timestamp signed with a per-process secret, valid for an
//    hour, stored nowhere. Such a token is not tied to one browser, so what stops a
//    forged cross-site sign-in ("login CSRF") is the same-origin check, which browsers
//    send on every form POST and a page on another site cannot fake; the session cookie
//    is SameSite=Lax besides.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { readFileSync } from "node:fs"
import Koa from "koa"
import koaRedisSessionSets from "koa-redis-session-sets"
import { errorPage, sessionsPage, signInPage } from "./html.mjs"

/** The store's options: with Redis they go to the factory, else to `SessionStore.makeMemory`. */
export const STORE_OPTIONS = {
  prefix: "koa-demo",
  references: { user_id: { maxSessions: 10 } },
  maxAge: "1 hour",
  absoluteMaxAge: "8 hours",
  rolling: true,
  track: { userAgent: true, ip: true }
}
const SETTINGS = { maxSessions: 10, maxAge: "1 hour", absoluteMaxAge: "8 hours" }

const STYLESHEET = readFileSync(new URL("./style.css", import.meta.url))
const MAX_FORM_BYTES = 8 * 1024
const MAX_NAME_LENGTH = 64
const SIGN_IN_TOKEN_MILLIS = 60 * 60 * 1000

/**
 * The demo app over `sessions`: `{ store }` (a store built elsewhere) or `{ redis, prefix }`
 * (a URL; the factory opens the connection and `mw.close()` quits it). `storeLabel`: how
 * the pages' footer names the store.
 */
export const createDemoApp = (sessions, storeLabel) => {
  const app = new Koa()
  // Fresh keys each start: signed cookies from an earlier run are simply not accepted.
  app.keys = [randomBytes(32).toString("base64url")]
  const mw = "store" in sessions ? koaRedisSessionSets(app, sessions) : koaRedisSessionSets(app, { ...STORE_OPTIONS, ...sessions })
  const signIn = signInTokens(randomBytes(32))

  app.use(async (ctx, next) => {
    ctx.state.store = storeLabel
    ctx.set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    ctx.set("X-Content-Type-Options", "nosniff")
    ctx.set("Referrer-Policy", "same-origin")
    ctx.set("Cache-Control", "no-store")
    await next()
  })
  app.use(mw)
  app.use(async (ctx) => {
    const route = ROUTES[`${ctx.method} ${ctx.path}`]
    if (route !== undefined) return route(ctx, { mw, signIn })
    if (ROUTE_PATHS.has(ctx.path))
      return page(ctx, 405, errorPage(405, "Method Not Allowed", "This address does not take that method.", ctx.state.store))
    return page(ctx, 404, errorPage(404, "Not Found", "There is no page here.", ctx.state.store))
  })
  return { app, mw }
}

const page = (ctx, status, body) => {
  ctx.status = status
  ctx.type = "html"
  ctx.body = String(body)
}

const seeOther = (ctx, location) => {
  ctx.status = 303
  ctx.redirect(location)
}

const MESSAGES = {
  "signed-out": "You are signed out on this device.",
  everywhere: "You are signed out on every device.",
  ended: "Your session has ended (signed out from another device, or expired). Sign in again."
}

const messageOf = (ctx) => {
  const key = ctx.query["m"]
  if (typeof key === "string" && Object.hasOwn(MESSAGES, key)) return MESSAGES[key]
  const count = ctx.query["others"]
  if (typeof count === "string" && /^\d{1,4}$/.test(count)) {
    const n = Number(count)
    return n === 0 ? "No other device was signed in." : `Signed out ${n} other ${n === 1 ? "device" : "devices"}.`
  }
  return undefined
}

const home = async (ctx, { signIn }) => {
  const { user_id: user } = await ctx.session.get(["user_id"])
  if (user === undefined) return page(ctx, 200, signInPage({ token: signIn.create(), message: messageOf(ctx), store: ctx.state.store }))
  const token = await ctx.session.createCSRFToken()
  const devices = (await ctx.session.listSessions("user_id")).sort(
    (a, b) => Number(b.current) - Number(a.current) || (b.lastSeenAt ?? 0) - (a.lastSeenAt ?? 0)
  )
  const lifetime = await ctx.session.lifetime()
  page(
    ctx,
    200,
    sessionsPage({ user, devices, lifetime, token, message: messageOf(ctx), settings: SETTINGS, now: Date.now(), store: ctx.state.store })
  )
}

const forbidden = (ctx) =>
  page(
    ctx,
    403,
    errorPage(
      403,
      "Forbidden",
      "This form's security token is missing, invalid or expired, or it was sent from another site. Nothing was changed.",
      ctx.state.store
    )
  )

/** The POST's form fields, or undefined after answering 413/415. */
const readForm = async (ctx) => {
  if (!ctx.is("application/x-www-form-urlencoded")) {
    page(ctx, 415, errorPage(415, "Unsupported Media Type", "Send the form as application/x-www-form-urlencoded.", ctx.state.store))
    return undefined
  }
  let raw = ""
  for await (const chunk of ctx.req) {
    raw += chunk
    if (raw.length > MAX_FORM_BYTES) {
      page(ctx, 413, errorPage(413, "Payload Too Large", "That form is too large.", ctx.state.store))
      return undefined
    }
  }
  return new URLSearchParams(raw)
}

/** Whether the request comes from this site's own pages (see the CSRF note at the top). */
// (Not `ctx.origin`: Koa 3 answers the request's Origin header there when it has one.)
const sameOrigin = (ctx) => {
  const origin = ctx.get("Origin")
  if (origin !== "") return origin === `${ctx.protocol}://${ctx.host}`
  return ctx.get("Sec-Fetch-Site") === "same-origin"
}

/** A POST by a signed-in session: the form, once its token and origin passed; else a 403 (or the sign-in page). */
const signedInForm = async (ctx) => {
  const form = await readForm(ctx)
  if (form === undefined) return undefined
  if (!sameOrigin(ctx) || !(await ctx.session.verifyCSRFToken(form.get("_csrf")))) {
    // A session revoked elsewhere has no secret left: say so rather than "forbidden".
    const { user_id: user } = await ctx.session.get(["user_id"])
    if (user === undefined && sameOrigin(ctx)) seeOther(ctx, "/?m=ended")
    else forbidden(ctx)
    return undefined
  }
  const { user_id: user } = await ctx.session.get(["user_id"])
  if (user === undefined) {
    seeOther(ctx, "/?m=ended")
    return undefined
  }
  return { form, user }
}

const ROUTES = {
  "GET /": home,
  "GET /style.css": (ctx) => {
    ctx.type = "css"
    ctx.set("Cache-Control", "public, max-age=300")
    ctx.body = STYLESHEET
  },
  "POST /sign-in": async (ctx, { signIn }) => {
    const form = await readForm(ctx)
    if (form === undefined) return
    if (!sameOrigin(ctx) || !signIn.verify(form.get("_csrf"))) return forbidden(ctx)
    const name = (form.get("name") ?? "").trim()
    if (name === "" || name.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(name)) {
      const error = `A user name is 1 to ${MAX_NAME_LENGTH} characters, without control characters.`
      return page(ctx, 400, signInPage({ token: signIn.create(), error, name: name.slice(0, MAX_NAME_LENGTH), store: ctx.state.store }))
    }
    // A new id at sign-in (an id fixed before it dies), then the referenced field.
    await ctx.session.regenerate()
    await ctx.session.set({ user_id: name })
    seeOther(ctx, "/")
  },
  "POST /sign-out": async (ctx) => {
    if ((await signedInForm(ctx)) === undefined) return
    await ctx.session.delete()
    seeOther(ctx, "/?m=signed-out")
  },
  "POST /sign-out-others": async (ctx) => {
    if ((await signedInForm(ctx)) === undefined) return
    const count = await ctx.session.revokeOthers("user_id")
    seeOther(ctx, `/?others=${count}`)
  },
  "POST /revoke": async (ctx) => {
    const checked = await signedInForm(ctx)
    if (checked === undefined) return
    const revoked = await ctx.session.revokeSession(checked.form.get("handle"))
    seeOther(ctx, `/?others=${revoked ? 1 : 0}`)
  },
  "POST /sign-out-everywhere": async (ctx, { mw }) => {
    const checked = await signedInForm(ctx)
    if (checked === undefined) return
    await mw.store.deleteByReference("user_id", checked.user)
    await ctx.session.delete() // this session is gone already; this clears its cookie
    seeOther(ctx, "/?m=everywhere")
  }
}
const ROUTE_PATHS = new Set(Object.keys(ROUTES).map((route) => route.split(" ")[1]))

/** The sign-in form's stateless tokens: `<time>.<HMAC(secret, time)>`, valid for an hour. */
const signInTokens = (secret) => {
  const sign = (time) => createHmac("sha256", secret).update(`sign-in:${time}`).digest("base64url")
  return {
    create: () => {
      const time = Date.now().toString(36)
      return `${time}.${sign(time)}`
    },
    verify: (token) => {
      if (typeof token !== "string" || !/^[0-9a-z]{1,12}\.[\w-]{43}$/.test(token)) return false
      const [time, mac] = token.split(".")
      const age = Date.now() - parseInt(time, 36)
      if (!(age >= 0 && age <= SIGN_IN_TOKEN_MILLIS)) return false
      return timingSafeEqual(Buffer.from(mac), Buffer.from(sign(time)))
    }
  }
}
