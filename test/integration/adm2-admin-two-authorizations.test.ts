// A request to the admin API with two Authorization headers was decided on the first alone (Node
// keeps the first and drops the rest), where the gateway refuses such a request 400 bad_request: a
// proxy in front may read the other one, and the two then disagree on who is asking (found by the
// admin probe). The admin listener refuses it too, whichever of the two is the admin token.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'

const ADMIN = 'adm2-two-authorizations-admin-token-0123'
let gateway: TestGateway

beforeAll(async () => {
  gateway = await startTestGateway({ admin: { token: ADMIN }, routes: [] })
})

afterAll(async () => gateway?.close())

it('refuses two Authorization headers with 400 bad_request, in either order', async () => {
  const port = Number(new URL(gateway.adminUrl).port)
  for (const [first, second] of [[ADMIN, 'wrong-token'], ['wrong-token', ADMIN]]) {
    const res = await rawRequest(port, `GET /api/routes HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer ${first}\r\nAuthorization: Bearer ${second}\r\nConnection: close\r\n\r\n`)
    expect({ first: first === ADMIN ? 'admin' : 'wrong', status: res.status, code: (JSON.parse(res.body) as { code: string }).code })
      .toEqual({ first: first === ADMIN ? 'admin' : 'wrong', status: 400, code: 'bad_request' })
  }
  const one = await rawRequest(port, `GET /api/routes HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer ${ADMIN}\r\nConnection: close\r\n\r\n`)
  expect(one.status).toBe(200)
})
