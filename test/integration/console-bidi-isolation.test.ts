// Found by a probe: a recorded value holding a Unicode direction override (U+202E RIGHT-TO-LEFT
// OVERRIDE, in a token's sub) reversed the text the console printed after it on the same line:
// the trace's "(issuer; bearer)" after the subject read backwards, so a person explaining a request
// could be shown a different issuer or credential than recorded (the "txt.exe" spoof). Each
// recorded value printed inside a sentence is now isolated (<bdi>). Real chromium, a real gateway,
// identity provider and SQLite log; the text's order is measured on screen, not read from the markup.
import type { Browser, Locator } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeAll, collectPageErrors, launchChromium, openPage, showPage, signInWithToken, waitForAuditRecords } from '../helpers/browser.ts'
import { consoleSettings } from '../helpers/console-gateway.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'console-bidi-admin-token-0123456789'
const SUBJECT = 'looker-\u202Eexe.txt'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway((dir) => ({
    ...consoleSettings(dir, ADMIN_TOKEN),
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'corp-sso', subject: 'looker-*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['sales'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'sales', methods: ['GET'], path: '/sales', upstream: 'api' }],
  }))
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'the issuer keys', 20_000)
  const res = await request(`${gateway.url}/sales`, { headers: { authorization: `Bearer ${await idp.mint({ sub: SUBJECT })}` } })
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  await waitForAuditRecords(gateway.adminUrl, ADMIN_TOKEN, 1)
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser, gateway, upstream, idp))

/** What of the page's DOM the measure below uses (this project's Node-only tsconfig has no DOM types). */
interface TextNode { length: number }
interface PageDocument {
  createTreeWalker(root: unknown, show: number): { nextNode(): unknown; currentNode: TextNode }
  createRange(): { setStart(node: TextNode, at: number): void; setEnd(node: TextNode, at: number): void; getBoundingClientRect(): { left: number } }
}

/** Whether the element's text runs left to right on screen: in each of its texts, the first character left of the second (a line may wrap further on). */
const leftToRight = (el: Locator) => el.evaluate((node) => {
  const doc = (globalThis as unknown as { document: PageDocument }).document
  const texts: TextNode[] = []
  const walker = doc.createTreeWalker(node, 4) // NodeFilter.SHOW_TEXT
  while (walker.nextNode()) if (walker.currentNode.length > 0) texts.push(walker.currentNode)
  const at = (text: TextNode, i: number) => {
    const range = doc.createRange()
    range.setStart(text, i)
    range.setEnd(text, i + 1)
    return range.getBoundingClientRect().left
  }
  const runs = texts.filter((text) => text.length >= 2)
  return runs.length > 0 && runs.every((text) => at(text, 0) < at(text, 1))
})

it('a subject with a right-to-left override does not turn the rest of the trace\'s identity line around', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
  const errors = collectPageErrors(page)
  try {
    await signInWithToken(page, gateway.adminUrl, ADMIN_TOKEN)
    await showPage(page, gateway.adminUrl, 'requests')
    await page.getByRole('button', { name: 'GET /sales' }).click()
    const identity = page.locator('[data-testid=trace] dd').nth(1)
    await expect.poll(() => identity.innerText()).toContain(idp.issuer)
    const after = identity.locator('small').first()
    expect(await after.innerText()).toBe(`(${idp.issuer}; bearer)`)
    expect(await leftToRight(after)).toBe(true)
    // The explanation's identity line too: ", client …" and "(from …)" after the subject.
    const explained = page.locator('[data-testid=trace] [data-testid=explanation] small', { hasText: 'signature not checked' })
    expect(await leftToRight(explained)).toBe(true)
    expect(errors).toEqual([])
  } finally {
    await context.close()
  }
})
