// Faults a probe found in the console for people on a keyboard or a screen reader, each driven in
// Debian's chromium against a real gateway and SQLite audit log. What a screen reader hears is read
// from chromium's own accessibility tree (the DevTools protocol's Accessibility domain), not guessed
// from the markup: a control's name, where it came from, its pressed state.
import type { Browser, Page } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll, launchChromium, showPage, waitForAuditRecords } from '../helpers/browser.ts'
import { consoleSettings } from '../helpers/console-gateway.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { openConsoleTab, type ConsoleTab } from '../helpers/console-tab.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ADMIN_TOKEN = 'console-a11y-admin-token-0123456789'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let browser: Browser
let tab: ConsoleTab
const errors: string[] = []

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway((dir) => ({
    ...consoleSettings(dir, ADMIN_TOKEN),
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: ['api://bouncer'] }],
    // The matrix: a role allowed on one route and denied outright on another.
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp-sso', subject: 'reader-*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [
      { sid: 'ReadAll', effect: 'allow', actions: ['GET'], routes: ['*'] },
      { sid: 'NotClosed', effect: 'deny', actions: ['GET'], routes: ['closed'] },
    ] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'open', methods: ['GET'], path: '/open', upstream: 'api', public: true },
      { id: 'closed', methods: ['GET'], path: '/closed', upstream: 'api' },
      { id: 'items', methods: ['GET'], path: '/items', upstream: 'api' },
    ],
  }))
  const statuses: number[] = []
  for (const path of ['/open', '/open', '/open', '/closed', '/closed']) {
    const res = await request(`${gateway.url}${path}`)
    await res.body.dump()
    statuses.push(res.statusCode)
  }
  expect(statuses).toEqual([200, 200, 200, 401, 401])
  await waitForAuditRecords(gateway.adminUrl, ADMIN_TOKEN, statuses.length)
  browser = await launchChromium()
  tab = await openConsoleTab(browser, { viewport: { width: 1280, height: 800 } }, { adminUrl: gateway.adminUrl, token: ADMIN_TOKEN })
}, 120_000)

afterAll(() => closeAll(tab, browser, gateway, upstream, idp))

/** The file's one signed-in tab (console-tab.ts), on a document of this test's own; its errors collected under `name`. */
function openConsole(name: string): Promise<{ page: Page; release(): Promise<void> }> {
  return tab.take([['pageerror', (err: Error) => errors.push(`${name}: ${err.message}`)]])
}

const show = (page: Page, route: string) => showPage(page, gateway.adminUrl, route)

interface AXValue { value?: unknown }
interface AXNode {
  ignored: boolean
  role?: AXValue
  name?: AXValue & { sources?: Array<{ type: string; value?: AXValue; superseded?: boolean }> }
  properties?: Array<{ name: string; value: AXValue }>
}

/** The page's accessibility tree as chromium hands it to a screen reader. */
async function axTree(page: Page): Promise<AXNode[]> {
  const cdp = await page.context().newCDPSession(page)
  try {
    return ((await cdp.send('Accessibility.getFullAXTree')) as { nodes: AXNode[] }).nodes.filter((n) => !n.ignored)
  } finally {
    await cdp.detach()
  }
}

const CONTROLS = new Set(['button', 'textbox', 'combobox', 'checkbox', 'radio', 'radiogroup', 'searchbox', 'spinbutton', 'link'])

/**
 * Each control a screen reader would announce without a name, with only its placeholder for one
 * (gone once something is typed), or with a symbol for a name ("×").
 */
async function unnamedControls(page: Page): Promise<string[]> {
  return (await axTree(page)).flatMap((n) => {
    const role = String(n.role?.value ?? '')
    if (!CONTROLS.has(role)) return []
    const name = String(n.name?.value ?? '').trim()
    const from = n.name?.sources?.find((s) => s.value !== undefined && !s.superseded)?.type
    if (name === '') return [`${role} without a name`]
    if (from === 'placeholder') return [`${role} named by its placeholder only: ${JSON.stringify(name)}`]
    if (!/[\p{L}\p{N}]/u.test(name)) return [`${role} named ${JSON.stringify(name)}`]
    return []
  })
}

// Found by the notes' older list: a keyboard user went through the header's every link and button
// (nine pages, the reload, sign out) on each page before reaching it.
describe('a keyboard user skips the header', () => {
  it('the first Tab reaches "Skip to content", shown when focused; Enter moves focus to the page and leaves the route as it was', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('skip')
    try {
      await show(page, 'denials')
      await page.keyboard.press('Tab')
      const skip = page.locator(':focus')
      expect(await skip.textContent()).toBe('Skip to content')
      const box = await skip.boundingBox()
      expect(box !== null && box.y >= 0 && box.height > 0).toBe(true) // on screen once focused (it waits above the top before)
      await page.keyboard.press('Enter')
      expect(await page.evaluate('document.activeElement?.id')).toBe('content')
      expect(new URL(page.url()).hash).toBe('#/denials')
      expect(await page.locator('main h1').textContent()).toBe('Denials')
      await page.keyboard.press('Tab') // the page's own first control, not the header's
      expect(await page.evaluate('document.activeElement?.closest("header") ?? null')).toBeNull()
    } finally {
      await release()
    }
  })
})

describe('every control has a name a screen reader can say', () => {
  it('on each page, the simulator in both modes, and the overview with its chips', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('names')
    try {
      const found: Record<string, string[]> = {}
      for (const route of ['overview?route=open&principal=someone&from=2026-01-01T00:00:00.000Z&to=2026-01-01T01:00:00.000Z', 'requests', 'denials?code=missing_token', 'audit', 'catalog', 'simulator']) {
        await show(page, route)
        found[route] = await unnamedControls(page)
      }
      await page.getByRole('radio', { name: /token/ }).check()
      found['simulator (token)'] = await unnamedControls(page)
      expect(found).toEqual(Object.fromEntries(Object.keys(found).map((k) => [k, []])))
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

/** The pressed state chromium reports for each button of the Range group, by its name. */
async function rangeStates(page: Page): Promise<Record<string, unknown>> {
  const nodes = await axTree(page)
  const names = await page.locator('[role=group][aria-label=Range] button').allInnerTexts()
  return Object.fromEntries(names.map((name) => {
    const node = nodes.find((n) => n.role?.value === 'button' && n.name?.value === name)
    return [name, node?.properties?.find((p) => p.name === 'pressed')?.value.value ?? 'not a toggle']
  }))
}

describe('the range shown is told by more than its colour', () => {
  it('each range button says whether it is pressed, on the Overview and the Denials page', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('ranges')
    try {
      await show(page, 'overview?since=6h')
      expect(await rangeStates(page)).toEqual({ '15m': 'false', '1h': 'false', '6h': 'true', '24h': 'false', '7d': 'false', '30d': 'false' })
      // A zoomed-in span is none of them.
      await show(page, 'overview?from=2026-01-01T00:00:00.000Z&to=2026-01-01T01:00:00.000Z')
      expect(Object.values(await rangeStates(page))).toEqual(Array(6).fill('false'))
      await show(page, 'denials')
      expect(await rangeStates(page)).toEqual({ '15m': 'false', '1h': 'false', '6h': 'false', '24h': 'true', '7d': 'false', '30d': 'false' })
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

describe('the Overview\'s charts have a text alternative', () => {
  it('each chart opens, by keyboard, into a table of its numbers that match the audit log', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('charts')
    try {
      await show(page, 'overview?since=15m')
      const traffic = page.getByRole('figure', { name: 'Requests by outcome' })
      // Opened as a keyboard user would: focus the disclosure, press Enter.
      await traffic.getByText('Requests by outcome as a table').focus()
      await page.keyboard.press('Enter')
      const table = traffic.getByRole('table', { name: 'Requests by outcome' })
      const heads = await table.getByRole('columnheader').allInnerTexts()
      expect(heads).toEqual(['bucket start (UTC)', 'allow', 'deny:missing_token'])
      const rows = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => (c as { textContent: string }).textContent)))
      const sum = (col: number) => rows.reduce((a, r) => a + Number(r[col]), 0)
      expect([sum(1), sum(2)]).toEqual([3, 2])
      // The canvas's hover legend ("Time: --") is not what a screen reader reads.
      expect(await traffic.getByRole('row', { name: /Time/ }).count()).toBe(0)

      const latency = page.getByRole('figure', { name: /^Latency/ })
      await latency.getByText(/as a table$/).click()
      const lat = latency.getByRole('table', { name: 'Latency of forwarded requests (ms)' })
      expect(await lat.getByRole('columnheader').allInnerTexts()).toEqual(['bucket start (UTC)', 'request p50', 'request p99', 'upstream p50', 'upstream p99'])
      expect(await lat.locator('tbody tr td').first().innerText()).toMatch(/^\d+(\.\d+)?$/)
      expect(await latency.getByRole('row', { name: /Time/ }).count()).toBe(0)
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

describe('a request\'s trace opens from the keyboard as from the mouse', () => {
  it('each row has a button a screen reader announces, which Space and Enter open, saying it is expanded', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('rows')
    try {
      await show(page, 'requests?status=401')
      const open = page.getByRole('button', { name: 'GET /closed' }).first()
      expect(await open.getAttribute('aria-expanded')).toBe('false')
      await open.focus()
      await page.keyboard.press('Space')
      await page.locator('[data-testid=trace]').waitFor()
      expect(await open.getAttribute('aria-expanded')).toBe('true')
      await page.getByRole('button', { name: 'close', exact: true }).click()
      await page.locator('[data-testid=trace]').waitFor({ state: 'detached' })
      await open.focus()
      await page.keyboard.press('Enter')
      await page.locator('[data-testid=trace]').waitFor()
      // One tab stop a row (the button), not the row and its button both.
      expect(await page.locator('[data-testid=row][tabindex]').count()).toBe(0)
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

/** Whether a screen reader is told when this element's text appears: it is inside a live region that was there before. */
const announced = (page: Page, selector: string) => page.locator(selector).evaluate((el) => el.closest('[aria-live]:not([aria-live=off]), [role=status], [role=alert], [role=log]') !== null)

describe('results that arrive later are announced', () => {
  it('the simulator\'s explanation, the chain\'s verification, a reload\'s and an export\'s outcome are in live regions there before them', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('live')
    try {
      await show(page, 'simulator')
      const region = await page.locator('[data-testid=explain-result]').evaluate((el) => el.getAttribute('aria-live') ?? el.getAttribute('role'))
      expect(region).toMatch(/polite|status/)
      await page.fill('input[name=path]', '/closed')
      await page.fill('textarea[name=claims]', '')
      await page.getByRole('button', { name: 'Explain', exact: true }).click()
      await page.locator('[data-testid=decision]').waitFor()
      expect(await announced(page, '[data-testid=decision]')).toBe(true)

      // A status region said only once it is in the page before its text: one inserted with its text is often not read.
      expect(await page.locator('.reload [role=status]').count(), 'the reload\'s status, before any reload').toBe(1)
      await page.getByRole('button', { name: 'Reload config' }).click()
      await expect.poll(() => page.locator('.reload [role=status]').innerText()).toMatch(/reloaded|refused/)

      await show(page, 'audit')
      expect(await page.locator('.audit [role=status]', { hasText: '' }).count(), 'the export\'s and the verification\'s status, before either').toBe(2)
      await page.getByRole('button', { name: 'Verify now' }).click()
      await page.locator('[data-testid=verification]').waitFor()
      expect(await announced(page, '[data-testid=verification]')).toBe(true)
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

describe('a page is found by its headings and its title', () => {
  it('each page has one level-1 heading and a tab title naming it, and a panel\'s heading is its title, not its buttons', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('headings')
    try {
      const seen: Record<string, { title: string; h1: string[]; h2: string[] }> = {}
      for (const route of ['overview', 'requests', 'audit']) {
        await show(page, route)
        const headings = (level: number) => page.getByRole('heading', { level }).evaluateAll((hs) => hs.map((h) => (h as { textContent: string }).textContent))
        seen[route] = { title: await page.title(), h1: await headings(1), h2: (await headings(2)).filter((h) => /Search|The chain|Requests|Denial reasons/.test(h)) }
      }
      expect(seen).toEqual({
        overview: { title: 'Overview · Bouncer console', h1: ['Overview'], h2: ['Denial reasons'] },
        requests: { title: 'Requests · Bouncer console', h1: ['Requests'], h2: ['Requests'] },
        audit: { title: 'Audit · Bouncer console', h1: ['Audit'], h2: ['The chain', 'Search'] },
      })
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

describe('the routes × roles matrix says denied, not only strikes it through', () => {
  it('a method denied outright is read as denied, and each row is headed by its route', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('matrix')
    try {
      await show(page, 'catalog')
      const matrix = page.getByTestId('matrix')
      const row = (route: string) => matrix.getByRole('row').filter({ has: page.getByRole('rowheader', { name: new RegExp(`^${route} `) }) })
      // What a screen reader says of each cell (its accessible name): the struck-through GET of a deny is "denied", an allowed one is not.
      const said = async (route: string) => Promise.all((await row(route).getByRole('cell').all()).map(async (c) => /cell "([^"]*)"/.exec(await c.ariaSnapshot())?.[1]))
      expect(await row('closed').count()).toBe(1)
      expect(await row('items').count()).toBe(1)
      expect(await said('closed')).toEqual(['upstream api', 'denied: GET'])
      expect(await said('items')).toEqual(['upstream api', 'GET'])
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

/**
 * Each visible text whose colour against its background falls short of WCAG 2 AA (4.5:1, or 3:1 for
 * large text), as axe's color-contrast rule measures it: the first opaque background up the tree.
 * A string run in the page (this project's Node-only tsconfig has no DOM types).
 */
const LOW_CONTRAST = `(() => {
  const parse = (c) => { const m = /rgba?\\(([^)]+)\\)/.exec(c); if (!m) return null; const p = m[1].split(',').map(Number); return { r: p[0], g: p[1], b: p[2], a: p[3] ?? 1 } }
  const lum = ({ r, g, b }) => [r, g, b].map((v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0)
  const backgroundOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a === 1) return c } return { r: 255, g: 255, b: 255 } }
  const found = new Set()
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT)
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement
    if (!walker.currentNode.textContent.trim() || el.closest('.sr-only, [aria-hidden=true], :disabled')) continue
    const style = getComputedStyle(el)
    const box = el.getBoundingClientRect()
    if (box.width < 2 || box.height < 2) continue
    const [a, b] = [lum(parse(style.color)), lum(backgroundOf(el))].sort((x, y) => y - x)
    const ratio = (a + 0.05) / (b + 0.05)
    const size = parseFloat(style.fontSize)
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66)
    if (ratio < (large ? 3 : 4.5)) found.add(el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : '') + ' "' + walker.currentNode.textContent.trim().slice(0, 20) + '" ' + ratio.toFixed(2) + ':1')
  }
  return [...found]
})()`

describe('text is readable against its background', () => {
  it('every text on each page meets WCAG AA contrast', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('contrast')
    try {
      const found: Record<string, string[]> = {}
      for (const route of ['overview?since=15m', 'requests', 'denials', 'simulator', 'audit', 'catalog']) {
        await show(page, route)
        found[route] = await page.evaluate<string[]>(LOW_CONTRAST)
      }
      expect(found).toEqual(Object.fromEntries(Object.keys(found).map((k) => [k, []])))
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

describe('zooming into a time range works without a mouse', () => {
  it('a bucket of a chart\'s table zooms the Overview to it, as dragging across the chart does', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('zoom')
    try {
      await show(page, 'overview?since=15m')
      const traffic = page.getByRole('figure', { name: 'Requests by outcome' })
      await traffic.getByText('Requests by outcome as a table').focus()
      await page.keyboard.press('Enter')
      const bucket = traffic.getByRole('rowheader').first().getByRole('button')
      const label = await bucket.innerText()
      await bucket.focus()
      await page.keyboard.press('Enter')
      await page.waitForURL(/[?&]from=.*&to=/)
      const hash = new URLSearchParams(new URL(page.url()).hash.split('?')[1])
      expect(hash.get('from')?.replace('T', ' ').replace(/\.\d+Z$/, '')).toBe(label)
      expect(Date.parse(hash.get('to') ?? '') - Date.parse(hash.get('from') ?? '')).toBe(10_000) // one 10 s bucket of a 15 m range
      await page.getByRole('button', { name: 'Clear the selected range' }).waitFor()
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

describe('every table column has a header a screen reader can say', () => {
  it('the Denials table\'s column of Simulate buttons is named', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('headers')
    try {
      await show(page, 'denials')
      await page.getByRole('button', { name: 'Simulate' }).first().waitFor()
      const nodes = await axTree(page)
      const unnamed = nodes.filter((n) => n.role?.value === 'columnheader' && String(n.name?.value ?? '').trim() === '')
      expect(unnamed).toHaveLength(0)
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

describe('closing a trace puts the keyboard back where it was', () => {
  it('focus returns to the request\'s button, not to the top of the page', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('focus')
    try {
      await show(page, 'requests?status=401')
      const open = page.getByRole('button', { name: 'GET /closed' }).first()
      await open.focus()
      await page.keyboard.press('Enter')
      await page.locator('[data-testid=trace]').waitFor()
      await page.getByRole('button', { name: 'close', exact: true }).focus()
      await page.keyboard.press('Enter')
      await page.locator('[data-testid=trace]').waitFor({ state: 'detached' })
      expect(await open.evaluate((el) => el === (el.ownerDocument as unknown as { activeElement: unknown }).activeElement)).toBe(true)
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})

describe('a request\'s outcome is told by more than its colour', () => {
  it('the Requests table\'s status says allow, deny or error in words, not only by the tag\'s colour', { timeout: 120_000 }, async () => {
    const { page, release } = await openConsole('outcome')
    try {
      await show(page, 'requests')
      const statuses = await page.locator('[data-testid=row] td:nth-child(2)').evaluateAll((cells) => cells.map((c) => (c as { textContent: string }).textContent))
      expect(new Set(statuses)).toEqual(new Set(['200 allow', '401 deny']))
      expect(errors).toEqual([])
    } finally {
      await release()
    }
  })
})
