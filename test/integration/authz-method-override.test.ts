// Found by an adversarial probe (helper "authz"): a POST's `_method` query parameter. Laravel and
// Symfony, and Express's method-override (`methodOverride('_method')`), run a POST that carries
// `?_method=DELETE` as a DELETE; the gateway routed and authorized it as the POST it came as, and
// forwarded the query as sent, so a caller allowed POST and denied DELETE had the upstream run
// DELETE. The header spellings (X-HTTP-Method-Override, …) were already removed. Now the POST is
// routed and authorized as both methods. The upstream is a real Express app with method-override's
// query getter, recording the method each request ran as.
import { METHODS } from 'node:http'
import express from 'express'
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { startOverrideGateway, type OverrideSetup } from '../helpers/method-override.ts'
import { rawRequest, type RawResponse } from '../helpers/raw.ts'

let setup: OverrideSetup
let gateway: TestGateway
let token: string
const ADMIN = 'authz-method-override-admin-0123456789'
/** What the upstream ran: `METHOD /path`, after method-override. */
const ran: string[] = []

beforeAll(async () => {
  const api = express()
  // method-override's query getter (`methodOverride('_method')`): a POST runs as the method its `_method` names.
  api.use((req, _res, next) => {
    const named = req.query._method
    const value = Array.isArray(named) ? named[0] : named
    if (req.method === 'POST' && typeof value === 'string' && METHODS.includes(value.toUpperCase())) req.method = value.toUpperCase()
    next()
  })
  api.all('/{*rest}', (req, res) => {
    ran.push(`${req.method} ${req.path}`)
    res.send(`${req.method} ran`)
  })
  setup = await startOverrideGateway(api, { id: 'forms', path: '/forms/*' }, () => ({ admin: { token: ADMIN } }))
  ;({ gateway, token } = setup)
})

afterAll(() => setup?.close())

beforeEach(() => {
  ran.length = 0
})

function send(method: string, target: string): Promise<RawResponse> {
  return rawRequest(Number(new URL(gateway.url).port), `${method} ${target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
}

function answer(res: RawResponse): { status: number; code?: string } {
  return res.headers['content-type'] === 'application/problem+json' ? { status: res.status, code: (JSON.parse(res.body) as { code: string }).code } : { status: res.status }
}

describe('a POST whose _method names a method the policies deny', () => {
  it('is refused 403 policy_denied, naming the parameter and the deny, and the upstream never runs DELETE', async () => {
    const res = await send('POST', '/records/42?_method=DELETE')
    expect(answer(res)).toEqual({ status: 403, code: 'policy_denied' })
    expect((JSON.parse(res.body) as { detail: string }).detail).toMatch(/_method parameter asks for DELETE.*Statement "NeverDelete"/)
    expect(ran).toEqual([])
  })

  it('in every spelling a framework reads as _method', async () => {
    for (const query of ['_method=delete', '_method=Delete', '%5Fmethod=DELETE', '_m%65thod=DELETE', '.method=DELETE', '+_method=DELETE', '_METHOD=DELETE', '_method[]=DELETE', 'a=1;_method=DELETE', '_method=POST&_method=DELETE', '_method=%20DELETE', '_method%00x=DELETE']) {
      expect(answer(await send('POST', `/records/42?${query}`)), query).toEqual({ status: 403, code: 'policy_denied' })
    }
    expect(ran).toEqual([])
  })
})

describe('routed as the method it names', () => {
  it('a route that does not take that method: 405, as the method itself would get', async () => {
    expect(answer(await send('POST', '/forms/1?_method=DELETE'))).toEqual({ status: 405, code: 'method_not_allowed' })
    expect(ran).toEqual([])
  })

  it('another route that takes it at this path: 400, not decided by the POST route\'s policies', async () => {
    const res = await send('POST', '/archive/1?_method=DELETE')
    expect(answer(res)).toEqual({ status: 400, code: 'bad_request' })
    expect((JSON.parse(res.body) as { detail: string }).detail).toContain('route "archive.delete"')
    expect(ran).toEqual([])
  })

  it('a value that is no HTTP method: 400 bad_request', async () => {
    expect(answer(await send('POST', '/records/42?_method=DE%20LETE'))).toEqual({ status: 400, code: 'bad_request' })
    expect(ran).toEqual([])
  })
})

describe('what stays allowed', () => {
  it('an allowed override is forwarded with its query as sent, and runs as that method', async () => {
    const res = await send('POST', '/records/42?_method=PATCH')
    expect(res.status).toBe(200)
    expect(ran).toEqual(['PATCH /records/42'])
  })

  it('a GET with _method (no framework overrides a GET), and a POST without one', async () => {
    expect((await send('GET', '/records/42?_method=DELETE')).status).toBe(200)
    expect((await send('POST', '/records/42?method=DELETE&x_method=DELETE')).status).toBe(200)
    expect(ran).toEqual(['GET /records/42', 'POST /records/42'])
  })
})

describe('explain agrees with the gateway', () => {
  it('POST /api/explain decides the POST as the method its _method names', async () => {
    const explain = async (method: string, path: string) => {
      const res = await request(`${gateway.adminUrl}/api/explain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ method, path, token }) })
      return ((await res.body.json()) as { decision: Record<string, unknown> }).decision
    }
    expect(await explain('POST', '/records/42?_method=DELETE')).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NeverDelete' })
    expect(await explain('POST', '/forms/1?_method=DELETE')).toMatchObject({ effect: 'deny', status: 405, code: 'method_not_allowed' })
    expect(await explain('POST', '/archive/1?_method=DELETE')).toMatchObject({ effect: 'deny', status: 400, code: 'bad_request' })
    expect(await explain('POST', '/records/42?_method=PATCH')).toMatchObject({ effect: 'allow', status: 200 })
  })
})
