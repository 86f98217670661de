// What every browser test does the same way: Debian's chromium driven by playwright-core (no browser
// of its own to download), a fresh context and page for each test, the console signed in with a
// token or at the test provider, the page's uncaught exceptions collected, and the teardown.
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core'
import { request } from 'undici'
import { waitFor } from './wait.ts'

/** Debian's package, unless CHROMIUM_PATH names another: playwright-core brings no browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Where the console's screenshots go, so a person can look at the pages a run drew. */
export const SCREENSHOTS = fileURLToPath(new URL('../../test-results/console/', import.meta.url))

/** Headless; no sandbox and no /dev/shm, which a container does not give chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
}

/** A context's options, and how long its waits may take (30 s; a loaded machine is slow). */
export interface PageOptions extends BrowserContextOptions {
  timeout?: number
}

/** A fresh context (no cookies or storage from another test) and its one page. */
export async function openPage(browser: Browser, { timeout = 30_000, ...options }: PageOptions = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(options)
  context.setDefaultTimeout(timeout)
  const page = await context.newPage()
  return { context, page }
}

/** Collects the page's uncaught exceptions into `into` (each after `prefix`), for a test to expect none. */
export function collectPageErrors(page: Page, into: string[] = [], prefix = ''): string[] {
  page.on('pageerror', (err) => into.push(`${prefix}${err.message}`))
  return into
}

/** Types a token into the console's sign-in form and sends it, as a person pastes one. */
export async function submitToken(page: Page, token: string): Promise<void> {
  await page.fill('input[name=token]', token)
  await page.click('button[type=submit]')
}

/** Opens the console and signs in with a token; done when the header says what access it has. */
export async function signInWithToken(page: Page, adminUrl: string, token: string): Promise<void> {
  await page.goto(adminUrl)
  await submitToken(page, token)
  await page.waitForSelector('[data-testid=access]')
}

/** Opens a console page by its route (the URL's fragment) and waits until it has drawn its data. */
export async function showPage(page: Page, adminUrl: string, route: string, ready = '[data-ready=true]'): Promise<void> {
  await page.goto(`${adminUrl}/#/${route}`)
  await page.waitForSelector(ready)
}

/** A person of the test provider (identity-provider.ts `people`). */
export interface Person {
  username: string
  password: string
}

/** Fills and sends the test provider's login form (its interaction page). */
export async function submitProviderLogin(page: Page, person: Person): Promise<void> {
  await page.fill('input[name=username]', person.username)
  await page.fill('input[name=password]', person.password)
  await page.click('#sign-in')
}

/** Follows the console's "Sign in with your company account", signs in at the provider, and is back at the console. */
export async function signInAtProvider(page: Page, issuer: string, adminUrl: string, person: Person): Promise<void> {
  await page.click('[data-testid=sso]')
  await page.waitForURL(new RegExp(`^${issuer}/interaction/`))
  await submitProviderLogin(page, person)
  await page.waitForURL(new RegExp(`^${adminUrl}/`))
}

/** The console's session cookie as a Cookie header, for requests sent beside the browser. */
export async function consoleCookie(context: BrowserContext, adminUrl: string): Promise<string> {
  const cookie = (await context.cookies(adminUrl)).find((c) => c.name === 'bouncer_console')
  if (!cookie) throw new Error('no console session cookie')
  return `${cookie.name}=${cookie.value}`
}

/** Waits until the audit API lists `atLeast` records of the last 15 minutes: the log is written in batches. */
export async function waitForAuditRecords(adminUrl: string, token: string, atLeast: number, { what = 'the records in the audit log', limit = 50 } = {}): Promise<void> {
  await waitFor(async () => {
    const res = await request(`${adminUrl}/api/audit/page?since=15m&limit=${limit}`, { headers: { authorization: `Bearer ${token}` } })
    return (((await res.body.json()) as { records?: unknown[] }).records?.length ?? 0) >= atLeast
  }, what, 20_000)
}

/** Something a beforeAll started, or a last step; undefined when the hook failed before starting it. */
export type Teardown = { close(): Promise<unknown> } | { stop(): Promise<unknown> } | (() => Promise<unknown>) | undefined

/** Stops what a beforeAll started, in the order given, skipping what it never started. */
export async function closeAll(...things: Teardown[]): Promise<void> {
  for (const thing of things) {
    if (thing === undefined) continue
    if (typeof thing === 'function') await thing()
    else if ('close' in thing) await thing.close()
    else await thing.stop()
  }
}
