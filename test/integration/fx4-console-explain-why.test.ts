// The console's explanation (the simulator, a recorded request's trace) showed a deny that matches
// on a claim the token withholds (`_claim_names`: Entra ID's groups past 200) as "matches", without
// the statement's why that bouncer explain prints (fx2-explain-withheld-claim): the reader saw a deny
// on a claim that is not there and took it for a bug. The note is shown after "matches".
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { closeAll, collectPageErrors, launchChromium, openPage, showPage, signInWithToken } from '../helpers/browser.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const ADMIN_TOKEN = 'fx4-console-why-admin-token-0123456789'

let gw: TestGateway
let browser: Browser

beforeAll(async () => {
  gw = await startTestGateway({
    admin: { token: ADMIN_TOKEN },
    telemetry: { log_level: 'silent' },
    issuers: [{ name: 'corp', issuer: 'https://corp.example', jwks_uri: 'http://127.0.0.1:9/jwks', audiences: ['api'] }],
    roles: [{ name: 'staff', assumed_by: [{ issuer: 'corp' }], policies: ['staff'] }],
    policies: [{
      name: 'staff',
      statements: [
        { sid: 'StaffRead', effect: 'allow', actions: ['GET'], routes: ['payroll'] },
        { sid: 'NoContractors', effect: 'deny', actions: ['*'], routes: ['payroll'], conditions: { claims: { groups: 'contractors' } } },
      ],
    }],
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'payroll', methods: ['GET'], path: '/payroll', upstream: 'api' }],
  })
  browser = await launchChromium()
}, 30_000)

afterAll(async () => {
  await closeAll(browser, gw)
})

it('the simulator shows why a deny on a withheld claim matches; an allow says only that it matches', async () => {
  const { context, page } = await openPage(browser, { timeout: 15_000 })
  const errors = collectPageErrors(page)
  try {
    await signInWithToken(page, gw.adminUrl, ADMIN_TOKEN)
    await showPage(page, gw.adminUrl, 'simulator')
    const claims = { iss: 'https://corp.example', aud: 'api', sub: 'user-1', _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/x/getMemberObjects' } } }
    await page.fill('input[name=path]', '/payroll')
    await page.fill('textarea[name=claims]', JSON.stringify(claims))
    await page.click('form.simulate button:text("Explain")')
    const deny = page.locator('[data-testid=statement]', { hasText: 'NoContractors' })
    await expect.poll(() => deny.count()).toBe(1)
    expect(await deny.innerText()).toMatch(/deny NoContractors.* matches \(claim groups is withheld by the token \(_claim_names points to another source\): a deny's condition on it holds, failing closed\)/)
    expect(await page.locator('[data-testid=statement]', { hasText: 'StaffRead' }).innerText()).toMatch(/matches$/)
    expect(errors).toEqual([])
  } finally {
    await context.close()
  }
})
