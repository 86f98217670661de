// assertion.ttl under a second (500ms, 0s): `exp` is in whole seconds, iat + floor(ttl), so every
// assertion the gateway signed had exp = iat and was expired when it arrived. The config was
// accepted and every upstream verifying the assertion refused every request, with nothing said.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
})

afterAll(async () => {
  await upstream?.close()
  await idp?.stop()
})

describe('assertion.ttl under a second', () => {
  it.each(['500ms', '0s'])('%s is refused at start, not signed into assertions that expire as they are made', { timeout: 20_000 }, async (ttl) => {
    const started = await startTestGateway({
      assertion: { ttl },
      issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
      ...allowAnyCaller(['corp']),
      upstreams: [{ name: 'api', url: upstream.url, identity_assertion: true }],
      routes: [{ id: 'api', path: '/*', upstream: 'api' }],
    }).catch((err: Error) => err)
    if (!(started instanceof Error)) {
      await waitFor(() => started.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
      const res = await request(`${started.url}/x`, { headers: { authorization: `Bearer ${await idp.mint({ sub: 'svc-reports' })}` } })
      const received = (await res.body.json()) as Received
      await started.close()
      const payload = JSON.parse(Buffer.from(String(received.headers['x-bouncer-assertion']).split('.')[1] as string, 'base64url').toString()) as { iat: number; exp: number }
      expect.fail(`started, and the upstream got an assertion with exp - iat = ${payload.exp - payload.iat} s`)
    }
    expect(started.message).toContain('assertion.ttl')
    expect(started.message).toContain('at least 1s')
  })
})
