// The demo in a real browser: headless Chromium (Debian's, /usr/bin/chromium, driven by
// playwright-core; never a downloaded browser) against the demo started as a child
// process on the test's redis-server. Two browser contexts (two devices: separate
// cookie jars) sign in as one user and see each other; "sign out other devices" signs
// the second out while the first stays; "sign out everywhere" signs the first out too;
// forged CSRF tokens get 403 and change nothing; user names and user agents are shown
// escaped. It also writes docs/demo-sessions.png, the README's screenshot.
//
// `chromium.launch` starts Chromium with a fresh temporary --user-data-dir of its own
// (and removes it on close); the contexts are separate profiles inside it.
import { randomBytes } from "node:crypto"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { Redis } from "ioredis"
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { inject } from "vitest"
import { buildDemo, ROOT, startDemo, stopDemo, type RunningDemo } from "./demoUtils.js"

const CHROMIUM = "/usr/bin/chromium"
// For a closed network: no background connections, nothing fetched at start.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]
const LAPTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
const PHONE =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
const SCREENSHOT = join(ROOT, "docs", "demo-sessions.png")

const client = new Redis(inject("redisUrl"))
const prefix = `t:demo-browser:${randomBytes(4).toString("hex")}`
let demo: RunningDemo | undefined
let browser: Promise<Browser> | undefined
const contexts: Array<BrowserContext> = []

beforeAll(async () => {
  buildDemo()
  demo = await startDemo(process.execPath, ["examples/demo/server.mjs", "--port", "0"], {
    REDIS_URL: inject("redisUrl"),
    DEMO_PREFIX: prefix
  })
}, 240_000)

// Launched by the first test that needs it, so that each test fails (never skips) with
// this message when Chromium cannot start.
const launched = (): Promise<Browser> =>
  (browser ??= chromium.launch({ executablePath: CHROMIUM, args: FLAGS, timeout: 30_000 }).catch((error: Error) => {
    throw new Error(
      `Chromium could not start from ${CHROMIUM}, and this test needs it: install Debian's chromium ` +
        `(apt-get install -y chromium; .ci/run does this). The launch failed with: ${error.message}`
    )
  }))

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => {})
  await (await browser?.catch(() => undefined))?.close()
  await stopDemo(demo)
  await client.quit()
})

const device = async (userAgent: string): Promise<Page> => {
  const context = await (await launched()).newContext({ userAgent, viewport: { width: 820, height: 760 } })
  contexts.push(context)
  const page = await context.newPage()
  page.setDefaultTimeout(10_000)
  // The demo's pages run no script; a dialog would be injected markup running.
  page.on("dialog", (dialog) => {
    throw new Error(`a dialog opened: ${dialog.message()}`)
  })
  return page
}

const open = async (page: Page) => {
  const response = await page.goto(`${demo!.url}/`)
  expect(response!.status()).toBe(200)
}

const signIn = async (page: Page, name: string) => {
  await open(page)
  await page.getByLabel("User name").fill(name)
  await Promise.all([page.waitForURL(`${demo!.url}/`), page.getByRole("button", { name: "Sign in" }).click()])
  await expect(heading(page)).resolves.toBe("Your sessions")
}

const heading = (page: Page) => page.locator("h1").textContent()

/** The listed devices: their short names, and which is marked current. */
const listed = async (page: Page) =>
  page.locator("li.device").evaluateAll((items) =>
    items.map((item) => ({
      name: item.querySelector("strong")!.textContent,
      current: item.classList.contains("current") && item.querySelector(".badge")?.textContent === "This device"
    }))
  )

const keys = () => client.keys(`${prefix}*`)

/** Clicks a button whose form's `_csrf` was replaced by a forged token; the response status. */
const submitForged = async (page: Page, button: string, forged: string) => {
  await page
    .locator("form", { has: page.getByRole("button", { name: button }) })
    .locator('input[name="_csrf"]')
    .evaluate((input, value) => {
      ;(input as unknown as { value: string }).value = value
    }, forged)
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST"),
    page.getByRole("button", { name: button }).click()
  ])
  await page.waitForLoadState()
  return response.status()
}

describe("the demo in Chromium", () => {
  it("two devices of one user: listed on both, sign out others, sign out everywhere, forged tokens refused", async () => {
    const laptop = await device(LAPTOP)
    const phone = await device(PHONE)

    // Signed out: the page renders, and there is no session (no cookie, no Redis key).
    await open(laptop)
    await expect(heading(laptop)).resolves.toBe("Sign in")
    expect(await laptop.context().cookies()).toEqual([])
    expect(await keys()).toEqual([])

    // A forged sign-in token: 403, still no session.
    await laptop.getByLabel("User name").fill("mallory")
    expect(await submitForged(laptop, "Sign in", "forged.token")).toBe(403)
    expect(await laptop.content()).toContain("Nothing was changed")
    expect(await laptop.context().cookies()).toEqual([])
    expect(await keys()).toEqual([])

    await signIn(laptop, "ada")
    expect(await keys()).not.toEqual([])
    await signIn(phone, "ada")
    await laptop.reload()
    expect(await listed(laptop)).toEqual([
      { name: "Chrome on Linux", current: true },
      { name: "Safari on iOS", current: false }
    ])
    expect(await listed(phone)).toEqual([
      { name: "Safari on iOS", current: true },
      { name: "Chrome on Linux", current: false }
    ])
    await expect(laptop.locator(".deadline").textContent()).resolves.toMatch(/ends in 7 h 59 min|ends in 8 h/)

    mkdirSync(join(ROOT, "docs"), { recursive: true })
    // Without the footer, which names the store's port (a new one each run), so each run
    // makes the same picture (set from script: the page's CSP refuses injected styles).
    await laptop.locator("footer").evaluate((footer) => {
      ;(footer as unknown as { style: { display: string } }).style.display = "none"
    })
    await laptop.screenshot({ path: SCREENSHOT, fullPage: true })

    // A forged token on "sign out other devices": 403, and the phone is still signed in.
    expect(await submitForged(laptop, "Sign out other devices", "a-forged-token")).toBe(403)
    await open(phone)
    expect(await listed(phone)).toHaveLength(2)

    // Sign out other devices: the phone is signed out on its next load; the laptop stays.
    await open(laptop)
    await laptop.getByRole("button", { name: "Sign out other devices" }).click()
    await expect(laptop.locator(".notice").textContent()).resolves.toBe("Signed out 1 other device.")
    expect(await listed(laptop)).toEqual([{ name: "Chrome on Linux", current: true }])
    await phone.reload()
    await expect(heading(phone)).resolves.toBe("Sign in")
    await laptop.reload()
    await expect(heading(laptop)).resolves.toBe("Your sessions")

    // Sign out everywhere: the laptop too, and the phone signed in again meanwhile.
    await signIn(phone, "ada")
    await open(laptop)
    expect(await listed(laptop)).toHaveLength(2)
    await laptop.getByRole("button", { name: "Sign out everywhere" }).click()
    await expect(heading(laptop)).resolves.toBe("Sign in")
    await expect(laptop.locator(".notice").textContent()).resolves.toBe("You are signed out on every device.")
    await phone.reload()
    await expect(heading(phone)).resolves.toBe("Sign in")
    await laptop.reload()
    await expect(heading(laptop)).resolves.toBe("Sign in")
    expect(await keys()).toEqual([])
  })

  it("shows user names and user agents as text, never as markup", async () => {
    const name = `<img src=x onerror=alert(1)>"&'`
    const userAgent = `<script>alert(2)</script><b>bold</b>`
    const page = await device(userAgent)
    await signIn(page, name)
    await expect(page.locator(".user").textContent()).resolves.toBe(name)
    await expect(page.locator("li.device .ua").textContent()).resolves.toBe(userAgent)
    expect(await page.locator("main img, main script, main b").count()).toBe(0)
    await page.getByRole("button", { name: "Sign out this device" }).click()
    await expect(page.locator(".notice").textContent()).resolves.toBe("You are signed out on this device.")
  })
})
