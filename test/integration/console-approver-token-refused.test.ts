// Found by a probe: on the Catalog's pending approvals, an admin signed in with the admin token decides
// with the approver's own token. When that token was refused (expired, mistyped: the API answers 401
// about the token in the body), the console took the 401 for its own credential's: it forgot the admin
// token and showed the sign-in page saying "Your session ended", mid-incident, and never said why the
// approval was not decided. Now the refusal is shown as what it is, and the tab stays signed in.
// Real chromium, a real gateway, identity provider and MCP client.
import type { Client } from '@modelcontextprotocol/client'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeAll, collectPageErrors, launchChromium, openPage, showPage, signInWithToken } from '../helpers/browser.ts'
import { connect, MCP_RESOURCE, startMcpTestGateway, type McpTestSetup } from '../helpers/mcp.ts'

const ADMIN_TOKEN = 'console-approver-refused-admin-token-0123456789'

let setup: McpTestSetup
let reporter: Client
let browser: Browser

beforeAll(async () => {
  setup = await startMcpTestGateway('console-approver-refused', (config) => {
    config.roles.push({ name: 'ops', assumed_by: [{ issuer: 'corp-sso', subject: 'no-tenant' }], policies: [] })
    return { ...config, admin: { token: ADMIN_TOKEN }, telemetry: { log_level: 'silent' }, mcp: { ...config.mcp, approvals: [{ tools: ['list_*'], approvers: ['ops'], ttl: '15m' }] } }
  })
  reporter = await connect(`${setup.gateway.url}/mcp`, await setup.idp.token('looker-reports', { resource: MCP_RESOURCE }), '2025-11-25')
  const pending = (await reporter.callTool({ name: 'list_customers', arguments: {} })).structuredContent as { status?: string }
  expect(pending.status).toBe('pending_approval')
  browser = await launchChromium()
}, 120_000)

afterAll(() => closeAll(browser, () => reporter.close(), setup))

it('an approver token the gateway refuses is said on the approvals panel; the admin stays signed in', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
  const errors = collectPageErrors(page)
  try {
    await signInWithToken(page, setup.gateway.adminUrl, ADMIN_TOKEN)
    await showPage(page, setup.gateway.adminUrl, 'catalog')
    const panel = page.locator('.panel', { hasText: 'Pending approvals' })
    await panel.getByRole('cell', { name: 'list_customers' }).waitFor()
    // A token of no issuer this gateway knows: what an expired or mistyped one also gets, a 401.
    await panel.getByLabel(/your token/).fill('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJvcHMtb25jYWxsIn0.c2ln')
    await panel.getByRole('button', { name: 'Approve' }).click()
    await expect.poll(() => panel.getByRole('alert').innerText()).toMatch(/^The approver's token was refused: .*iss/)
    // Still signed in, on the same page, the approval still waiting, the admin token still in this tab.
    expect(await page.locator('[data-testid=access]').innerText()).toBe('admin')
    expect(await page.locator('[data-testid=session-ended]').count()).toBe(0)
    expect(await panel.getByRole('cell', { name: 'list_customers' }).count()).toBe(1)
    expect(await page.evaluate('sessionStorage.getItem("bouncer.console.token")')).toBe(ADMIN_TOKEN)
    expect(errors).toEqual([])
  } finally {
    await context.close()
  }
})

it('a decision taken is said where a screen reader hears it, not only shown by the row going away', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 800 } })
  const errors = collectPageErrors(page)
  try {
    await signInWithToken(page, setup.gateway.adminUrl, ADMIN_TOKEN)
    await showPage(page, setup.gateway.adminUrl, 'catalog')
    const panel = page.locator('.panel', { hasText: 'Pending approvals' })
    await panel.getByRole('cell', { name: 'list_customers' }).waitFor()
    await panel.getByLabel(/your token/).fill(await setup.idp.token('no-tenant'))
    await panel.getByRole('button', { name: 'Approve' }).click()
    await expect.poll(() => panel.getByRole('status').innerText()).toBe('Approved list_customers for looker-reports.')
    await panel.getByText('Nothing waits for approval.').waitFor()
    expect(errors).toEqual([])
  } finally {
    await context.close()
  }
})
