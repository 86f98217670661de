// Found by the identity probe: a token in the query string is refused (400 bad_request, README
// "Refusals that are about the request"), but only when the parameter's name is written plain. With
// its name percent-encoded (?access%5Ftoken=<jwt>) the request passed on the caller's Authorization
// header and the upstream got the token in its query, which its parser reads as access_token (every
// form decoder decodes names; an RFC 6750 §2.3 resource server takes it).
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startAnyCallerGateway, type AnyCallerSetup, type TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import type { TestUpstream } from '../helpers/upstream.ts'

let setup: AnyCallerSetup
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  setup = await startAnyCallerGateway()
  ;({ idp, upstream, gateway } = setup)
})

afterAll(() => setup?.close())

async function call(query: string, token: string) {
  const res = await request(`${gateway.url}/data/x?${query}`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { code: string }).code }
}

it('refuses a token in the query string whose parameter name is percent-encoded, and never forwards it', async () => {
  const token = await idp.token('looker-reports')
  const other = await idp.mint({ sub: 'someone-else' })
  for (const name of ['access%5Ftoken', 'access%5ftoken', '%61ccess_token', 'access_%74oken']) {
    expect(await call(`region=eu&${name}=${other}`, token), name).toEqual({ status: 400, code: 'bad_request' })
  }
  expect(upstream.received.some((r) => r.url.includes(other))).toBe(false)
})

it('takes a query with other percent-encoded names and values, and a stray %', async () => {
  const token = await idp.token('looker-reports')
  expect(await call('q=access%5Ftoken&na%6De=x&bad%zz=1&access_tokens=1', token)).toEqual({ status: 200, code: undefined })
})
