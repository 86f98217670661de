// Found by the limits probe (helper): every reload released every address auth_failures held back.
// The addresses held were kept by the runtime's guard, made afresh by each compile, while their
// spent budgets stayed in the limits store: after any reload (a route added, a certificate
// renewed), a held address's next request had its credential verified again — a guesser's next
// guess was answered 401 rather than 429 (one free guess per address per reload), and a request
// the hold should refuse was served. README: once the bucket is empty, that address's requests get
// 429 before their credential is read, until the bucket would take one more.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let idp: TestIdentityProvider
let gw: TestGateway

function config(routes: object[]): Record<string, unknown> {
  return {
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes,
    // One failure an hour after a burst of 2: the hold outlasts the test on any machine.
    auth_failures: { rate: '1/h', burst: 2 },
  }
}

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  idp = await startIdentityProvider()
  gw = await startTestGateway(config([{ id: 'api', path: '/*', upstream: 'api' }]))
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

async function call(token: string) {
  const res = await request(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, code: text.startsWith('{') ? (JSON.parse(text) as { code: string }).code : null }
}

describe('an address auth_failures holds back, across a reload', () => {
  it('stays held: its credentials are not read again until its budget would take one more', async () => {
    const valid = await idp.token('looker-reports')
    const garbled = 'not.a.token'
    expect([(await call(garbled)).status, (await call(garbled)).status, (await call(garbled)).status]).toEqual([401, 401, 401])
    expect(await call(garbled)).toEqual({ status: 429, code: 'rate_limited' })
    expect(await call(valid)).toEqual({ status: 429, code: 'rate_limited' })

    await gw.writeConfig(config([{ id: 'open', path: '/open', upstream: 'api', public: true }, { id: 'api', path: '/*', upstream: 'api' }]))
    expect((await gw.reload()).ok).toBe(true)
    expect(await call(garbled)).toEqual({ status: 429, code: 'rate_limited' })
    expect(await call(valid)).toEqual({ status: 429, code: 'rate_limited' })
  })
})
