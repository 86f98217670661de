// explain and a certificate-bound token (cnf.x5t#S256, RFC 8705): the gateway takes it only over a
// connection presenting that certificate, and explain, which sees no connection, said "allowed"
// (POST /api/explain and `bouncer explain` alike). Now the explanation names the certificate the
// token needs (identity.certificate_bound, and the decision's reason says what a request without it
// gets); a binding the gateway refuses whatever the connection (cnf.jkt, cnf not an object) is a
// problem, refused as the gateway refuses it.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { allowAnyCaller, explainAt, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'idn3-explain-bound-admin-token-0123456'
const THUMBPRINT = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    admin: { token: ADMIN },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'api', path: '/*', upstream: 'api' }],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

async function gatewayAnswer(token: string): Promise<string> {
  const res = await request(`${gateway.url}/x`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return res.statusCode === 200 ? '200' : `${res.statusCode} ${(JSON.parse(text) as { code: string }).code}`
}

describe('explain of a certificate-bound token', () => {
  it('names the certificate it needs, which a request without it is refused for', async () => {
    const bound = await idp.mint({ sub: 'agent-7', cnf: { 'x5t#S256': THUMBPRINT } })
    expect(await gatewayAnswer(bound)).toBe('401 client_cert_required')

    const explained = await explainAt(gateway, ADMIN, { method: 'GET', path: '/x', token: bound })
    expect(explained.identity?.certificate_bound).toBe(THUMBPRINT)
    expect(explained.decision.reason).toContain(THUMBPRINT)
    expect(explained.decision.reason).toContain('401 client_cert_required')

    const cli = await runCliInProcess(['explain', '--config', gateway.file, '--method', 'GET', '--path', '/x', '--token', bound])
    expect(cli.stdout).toContain(`bound to the client certificate whose SHA-256 is ${THUMBPRINT}`)
    expect(cli.stdout).toMatch(/Decision\s+ALLOW: .*client_cert_required/)
    const claims = await explainAt(gateway, ADMIN, { method: 'GET', path: '/x', claims: { iss: idp.issuer, sub: 'agent-7', cnf: { 'x5t#S256': THUMBPRINT } } })
    expect(claims.identity?.certificate_bound).toBe(THUMBPRINT)

    // An unbound token: nothing said.
    const plain = await explainAt(gateway, ADMIN, { method: 'GET', path: '/x', token: await idp.mint({ sub: 'agent-7' }) })
    expect(plain.identity?.certificate_bound).toBeUndefined()
    expect(plain.decision.reason).not.toContain('client_cert_required')
  })

  it('refuses a binding the gateway refuses whatever the connection, as the gateway does', async () => {
    for (const cnf of [{ jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' }, 'bound', { 'x5t#S256': 7 }]) {
      const token = await idp.mint({ sub: 'agent-7', cnf })
      const real = await gatewayAnswer(token)
      const explained = await explainAt(gateway, ADMIN, { method: 'GET', path: '/x', token })
      expect(`${explained.decision.status} ${explained.decision.code}`, JSON.stringify(cnf)).toBe(real)
    }
  })
})
