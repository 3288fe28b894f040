// The demo's pages, rendered on the server. Every value interpolated into `html` is
// escaped unless it is itself `html` (a SafeHtml): user names and user agents come
// from whoever sends them, so escaping is the default, not something to remember.

class SafeHtml {
  constructor(text) {
    this.text = text
  }
  toString() {
    return this.text
  }
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" }

/** Escapes text for HTML content and quoted attribute values. */
export const escapeHtml = (value) => String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c])

const render = (value) => {
  if (value instanceof SafeHtml) return value.text
  if (Array.isArray(value)) return value.map(render).join("")
  if (value === undefined || value === null || value === false) return ""
  return escapeHtml(value)
}

/** A template tag: the literal parts are trusted markup, every interpolation is escaped. */
export const html = (strings, ...values) => new SafeHtml(strings.reduce((out, s, i) => out + render(values[i - 1]) + s))

// ---- times ----

const span = (millis) => {
  const minutes = Math.round(Math.abs(millis) / 60_000)
  if (minutes < 1) return "less than a minute"
  if (minutes < 60) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`
  return `${Math.round(hours / 24)} days`
}

/** "3 min ago" / "in 7 h 59 min" in a <time> whose title is the exact UTC time. */
const when = (at, now) => {
  if (typeof at !== "number") return html`<span class="muted">unknown</span>`
  const iso = new Date(at).toISOString()
  const exact = `${iso.slice(0, 16).replace("T", " ")} UTC`
  const text = Math.abs(at - now) < 45_000 ? "just now" : at < now ? `${span(now - at)} ago` : `in ${span(at - now)}`
  return html`<time datetime="${iso}" title="${exact}">${text}</time>`
}

// ---- user agents ----

/** A short name for a user agent ("Chrome on Linux"); the full string goes in a tooltip. */
export const deviceName = (userAgent) => {
  if (typeof userAgent !== "string" || userAgent === "") return "Unknown device"
  const browser =
    (/HeadlessChrome\//.test(userAgent) && "Headless Chrome") ||
    (/Edg\//.test(userAgent) && "Edge") ||
    (/Firefox\//.test(userAgent) && "Firefox") ||
    (/Chrom(e|ium)\//.test(userAgent) && "Chrome") ||
    (/Safari\//.test(userAgent) && "Safari") ||
    (/^curl\//.test(userAgent) && "curl") ||
    (/^node$|undici/.test(userAgent) && "Node.js") ||
    undefined
  const os =
    (/Android/.test(userAgent) && "Android") ||
    (/iPhone|iPad/.test(userAgent) && "iOS") ||
    (/Windows/.test(userAgent) && "Windows") ||
    (/Mac OS X|Macintosh/.test(userAgent) && "macOS") ||
    (/Linux|X11/.test(userAgent) && "Linux") ||
    undefined
  if (browser === undefined) return userAgent.length > 40 ? `${userAgent.slice(0, 40)}…` : userAgent
  return os === undefined ? browser : `${browser} on ${os}`
}

// ---- pages ----

const layout = (title, body, store) =>
  html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · koa-redis-session-sets demo</title>
        <link rel="stylesheet" href="/style.css" />
      </head>
      <body>
        <header><a class="brand" href="/">koa-redis-session-sets</a> <span class="muted">demo</span></header>
        <main>${body}</main>
        <footer class="muted">
          Sessions: ${store}, each a hash with a set of session ids per user. A signed-out visit creates no session and sets no cookie.
        </footer>
      </body>
    </html> `

const notice = (text) => (text === undefined ? "" : html`<p class="notice" role="status">${text}</p>`)

/** The page of a signed-out visitor. `token`: the sign-in form's CSRF token (stored nowhere). */
export const signInPage = ({ token, message, error, name, store }) =>
  layout(
    "Sign in",
    html`<h1>Sign in</h1>
      ${notice(message)}
      <p>
        Pick any user name (there is no password in this demo). Sign in with the same name in another browser to see both sessions listed.
      </p>
      <form class="card stack" method="post" action="/sign-in">
        <input type="hidden" name="_csrf" value="${token}" />
        <label for="name">User name</label>
        <input id="name" name="name" autocomplete="username" required maxlength="64" value="${name ?? ""}" autofocus />
        ${error === undefined ? "" : html`<p class="error" role="alert">${error}</p>`}
        <button type="submit">Sign in</button>
      </form>`,
    store
  )

const deviceRow = (device, token, now) =>
  html`<li class="device${device.current ? " current" : ""}">
    <div class="device-head">
      <strong title="${device.userAgent ?? ""}">${deviceName(device.userAgent)}</strong>
      ${device.current ? html`<span class="badge">This device</span>` : ""}
      ${device.ip === undefined ? "" : html`<span class="muted ip">${device.ip}</span>`}
    </div>
    <div class="ua muted" title="${device.userAgent ?? ""}">${device.userAgent ?? "no user agent sent"}</div>
    <dl>
      <div>
        <dt>Last seen</dt>
        <dd>${when(device.lastSeenAt, now)}</dd>
      </div>
      <div>
        <dt>Signed in</dt>
        <dd>${when(device.createdAt, now)}</dd>
      </div>
      <div>
        <dt>Expires if idle</dt>
        <dd>${when(device.expiresAt, now)}</dd>
      </div>
    </dl>
    ${
      device.current
        ? ""
        : html`<form method="post" action="/revoke">
            <input type="hidden" name="_csrf" value="${token}" />
            <input type="hidden" name="handle" value="${device.handle}" />
            <button class="link" type="submit">Sign this device out</button>
          </form>`
    }
  </li>`

/** The "Your sessions" page. */
export const sessionsPage = ({ user, devices, lifetime, token, message, settings, now, store }) =>
  layout(
    "Your sessions",
    html`<h1>Your sessions</h1>
      ${notice(message)}
      <p>
        Signed in as <strong class="user">${user}</strong>.
        ${devices.length === 1 ? "1 session of this user is live" : `${devices.length} sessions of this user are live`}, at most
        ${settings.maxSessions} at a time (a new sign-in beyond that signs out the least recently active).
      </p>
      ${
        lifetime?.absoluteExpiresAt === undefined
          ? ""
          : html`<p class="deadline">
              This session ends ${when(lifetime.absoluteExpiresAt, now)} whatever you do: sessions last at most ${settings.absoluteMaxAge}
              after sign-in (<code>absoluteMaxAge</code>), and end sooner after ${settings.maxAge} without a visit.
            </p>`
      }
      <ul class="devices">
        ${devices.map((device) => deviceRow(device, token, now))}
      </ul>
      <div class="actions">
        <form method="post" action="/sign-out">
          <input type="hidden" name="_csrf" value="${token}" /><button type="submit">Sign out this device</button>
        </form>
        <form method="post" action="/sign-out-others">
          <input type="hidden" name="_csrf" value="${token}" /><button type="submit" ${devices.length < 2 ? " disabled" : ""}>
            Sign out other devices
          </button>
        </form>
        <form method="post" action="/sign-out-everywhere">
          <input type="hidden" name="_csrf" value="${token}" /><button class="danger" type="submit">Sign out everywhere</button>
        </form>
      </div>`,
    store
  )

/** An error page: 403 for a refused form, 404, 405, 413, 415. */
export const errorPage = (status, title, text, store) =>
  layout(
    title,
    html`<h1>${status} ${title}</h1>
      <p>${text}</p>
      <p><a href="/">Back to the demo</a></p>`,
    store
  )
