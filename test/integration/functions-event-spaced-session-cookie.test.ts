// Found by an adversarial probe (helper): `Cookie: bouncer_session =SECRET` (a space before `=`) reached a function's event.cookies, although the gateway's own cookie reader trims the name and takes it as the session.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    issuers: [{ name: 'sso', issuer: 'http://127.0.0.1:9/', audiences: ['x'] }],
    sign_in: { issuer: 'sso', client_id: 'bouncer', client_secret: 'not-used-here' },
    functions: [{ name: 'echo', module: join(FIXTURES, 'echo.ts'), concurrency: 1 }],
    routes: [{ id: 'echo', path: '/echo', function: 'echo', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

it('the sign-in cookies written with a space before "=" are withheld from the event; the others pass', async () => {
  const res = await request(`${gw.url}/echo`, { headers: { cookie: 'app=1; bouncer_session =SESSIONSECRET;  bouncer_session_state  =STATESECRET; theme=dark' } })
  expect(res.statusCode).toBe(200)
  const { event } = (await res.body.json()) as { event: { cookies?: string[] } }
  expect(event.cookies).toEqual(['app=1', 'theme=dark'])
  expect(JSON.stringify(event)).not.toContain('SECRET')
})
