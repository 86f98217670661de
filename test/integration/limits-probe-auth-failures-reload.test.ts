// Found by the limits probe (helper): every reload released every address auth_failures held back.
// The addresses held were kept by the runtime's guard, made afresh by each compile, while their
// spent budgets stayed in the limits store: after any reload (a route added, a certificate
// renewed), a held address's next request had its credential verified again — a guesser's next
// guess was answered 401 rather than 429 (one free guess per address per reload), and a request
// the hold should refuse was served. README: once the bucket is empty, that address's requests get
// 429 before their credential is read, until the bucket would take one more.
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let idp: TestIdentityProvider
let gw: TestGateway

function config(routes: object[], maxKeys = 100_000): Record<string, unknown> {
  return {
    limits_store: { type: 'memory', max_keys: maxKeys },
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
  await Promise.all([...agents.values()].map((a) => a.close()))
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

const agents = new Map<string, Agent>()

/** From one loopback address (127.0.0.0/8 is all this host's): each address is a client of its own. */
async function call(token: string, from = '127.0.0.1') {
  let agent = agents.get(from)
  if (agent === undefined) agents.set(from, (agent = new Agent({ localAddress: from })))
  const res = await request(`${gw.url}/x`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } })
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

  // A new max_keys makes a new memory store over the same buckets (store-registry.ts): the holds go with the buckets.
  it('stays held across a reload that changes limits_store.max_keys', async () => {
    const valid = await idp.token('looker-reports')
    const garbled = 'not.a.token'
    const from = '127.0.0.2'
    expect([(await call(garbled, from)).status, (await call(garbled, from)).status, (await call(garbled, from)).status]).toEqual([401, 401, 401])
    expect(await call(garbled, from)).toEqual({ status: 429, code: 'rate_limited' })

    await gw.writeConfig(config([{ id: 'api', path: '/*', upstream: 'api' }], 2_000))
    expect((await gw.reload()).ok).toBe(true)
    expect(await call(garbled, from)).toEqual({ status: 429, code: 'rate_limited' })
    expect(await call(valid, from)).toEqual({ status: 429, code: 'rate_limited' })
  })
})
