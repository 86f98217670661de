// Issue 13.7: many upstream stacks (CGI, WSGI, PHP, Rack, nginx with underscores_in_headers) read
// `_` as `-` and ignore case, so a client's `X_Bouncer_Assertion` or `X-Forwarded_For` would reach
// the application as the header the gateway manages. Every client header whose name folds to a
// managed one is removed. Each family is sent through a raw socket, and the assertions are on what
// a real upstream received.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { foldHeaderName } from '../../src/http/managed-headers.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let port: number

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.2/32'] },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: ['api://bouncer'] }],
    roles: [{ name: 'any', assumed_by: [{ issuer: 'corp' }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [
      { name: 'plain', url: upstream.url },
      { name: 'keyed', url: upstream.url, headers: { 'X-Api-Key': 'from-gateway', 'X-Tenant_Id': 'acme', 'X-Remote-User': 'svc-gateway' } },
      { name: 'asserted', url: upstream.url, identity_assertion: true },
    ],
    routes: [
      { id: 'plain', path: '/plain/*', upstream: 'plain', public: true },
      { id: 'keyed', path: '/keyed/*', upstream: 'keyed', public: true },
      { id: 'asserted', path: '/asserted/*', upstream: 'asserted' },
    ],
  })
  port = Number(new URL(gateway.url).port)
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

/** Sends `headers` (name, value pairs, exactly as spelled) and returns what the upstream received. */
async function through(path: string, headers: Array<[string, string]>, options: { localAddress?: string } = {}): Promise<Received> {
  const lines = headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')
  const res = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: gw.example\r\n${lines}\r\n`, options)
  expect(res.status, res.body).toBe(200)
  return JSON.parse(res.body) as Received
}

/** The received headers whose name a folding upstream reads as `managed`, as [name, value] pairs. */
function readAs(received: Received, managed: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i < received.rawHeaders.length; i += 2) {
    const name = received.rawHeaders[i] as string
    if (foldHeaderName(name.toLowerCase()) === managed) out.push([name, received.rawHeaders[i + 1] as string])
  }
  return out
}

function expectNothingForged(received: Received): void {
  const forged = received.rawHeaders.filter((_, i) => i % 2 === 1 && received.rawHeaders[i]?.includes('forged'))
  expect(forged, JSON.stringify(received.rawHeaders)).toEqual([])
}

describe('client headers that a folding upstream would read as a managed one are removed', () => {
  it('X-Bouncer-*: look-alikes of the assertion never arrive beside the gateway’s own', async () => {
    const token = await idp.mint({ sub: 'svc-reports' })
    const received = await through('/asserted/x', [
      ['Authorization', `Bearer ${token}`],
      ['X_Bouncer_Assertion', 'forged-1'],
      ['x-bouncer_assertion', 'forged-2'],
      ['X.Bouncer.Assertion', 'forged-3'],
      ['X_BOUNCER_ROLES', 'forged-4'],
    ])
    expectNothingForged(received)
    const assertions = readAs(received, 'x-bouncer-assertion')
    expect(assertions).toHaveLength(1)
    expect(assertions[0]?.[1].split('.')).toHaveLength(3) // the gateway's JWT
    expect(readAs(received, 'x-bouncer-roles')).toEqual([])
  })

  it('X-Forwarded-* and Forwarded: only the gateway’s own, from an untrusted peer', async () => {
    const received = await through('/plain/x', [
      ['X_Forwarded_For', 'forged-6.6.6.6'],
      ['X-Forwarded_Proto', 'forged-https'],
      ['x_forwarded_host', 'forged.example'],
      ['X_Forwarded_Prefix', 'forged-/admin'],
      ['X-Forwarded-Ssl', 'forged-on'],
      ['FORWARDED', 'for=forged'],
    ])
    expectNothingForged(received)
    expect(readAs(received, 'x-forwarded-for')).toEqual([['x-forwarded-for', '127.0.0.1']])
    expect(readAs(received, 'x-forwarded-proto')).toEqual([['x-forwarded-proto', 'http']])
    expect(readAs(received, 'x-forwarded-host').length).toBeLessThanOrEqual(1) // the gateway's own, when server.hosts names the Host
    for (const name of ['x-forwarded-prefix', 'x-forwarded-ssl', 'forwarded']) expect(readAs(received, name)).toEqual([])
  })

  it('X-Forwarded-* look-alikes from a trusted proxy are not believed either: only its real X-Forwarded-For counts', async () => {
    const received = await through('/plain/x', [
      ['X-Forwarded-For', '203.0.113.7'],
      ['X_Forwarded_For', 'forged-6.6.6.6'],
      ['X-Forwarded-Proto', 'https'],
      ['X_Forwarded_Proto', 'forged-gopher'],
    ], { localAddress: '127.0.0.2' })
    expectNothingForged(received)
    expect(readAs(received, 'x-forwarded-for')).toEqual([['x-forwarded-for', '203.0.113.7, 127.0.0.2']])
    expect(readAs(received, 'x-forwarded-proto')).toEqual([['x-forwarded-proto', 'https']])
  })

  it('X-Real-IP and X-Client-IP look-alikes', async () => {
    const received = await through('/plain/x', [['X_Real_IP', 'forged-6.6.6.6'], ['x-client_ip', 'forged-6.6.6.6'], ['X-REAL-IP', 'forged-6.6.6.6']])
    expectNothingForged(received)
    expect(readAs(received, 'x-real-ip')).toEqual([])
    expect(readAs(received, 'x-client-ip')).toEqual([])
  })

  it('the upstream’s configured headers: a client cannot set them under another spelling', async () => {
    const received = await through('/keyed/x', [['X_Api_Key', 'forged-1'], ['x.api.key', 'forged-2'], ['X-API-KEY', 'forged-3'], ['X-Tenant-Id', 'forged-4']])
    expectNothingForged(received)
    expect(readAs(received, 'x-api-key')).toEqual([['x-api-key', 'from-gateway']])
    expect(readAs(received, 'x-tenant-id')).toEqual([['x-tenant_id', 'acme']])
  })

  it('Authorization is not forwarded under any spelling on a route without forward_authorization', async () => {
    const received = await through('/plain/x', [['AUTHORIZATION', 'Bearer forged']])
    expectNothingForged(received)
    expect(readAs(received, 'authorization')).toEqual([])
  })

  it('path and method overrides', async () => {
    const received = await through('/plain/x', [
      ['X_Original_URL', 'forged-/admin'],
      ['X-Rewrite_URL', 'forged-/admin'],
      ['x_original_uri', 'forged-/admin'],
      ['X_Envoy_Original_Path', 'forged-/admin'],
      ['X_HTTP_Method_Override', 'forged-DELETE'],
      ['X-Method_Override', 'forged-DELETE'],
      ['X_HTTP_Method', 'forged-DELETE'],
    ])
    expectNothingForged(received)
    expect(received.method).toBe('GET')
    expect(received.url).toBe('/plain/x')
  })

  it('X-Request-Id, traceparent and tracestate: the gateway’s own only', async () => {
    const received = await through('/plain/x', [['X_Request_Id', 'forged-id'], ['TRACEPARENT', 'forged'], ['TraceState', 'forged=1']])
    expectNothingForged(received)
    expect(readAs(received, 'x-request-id')).toHaveLength(1)
    expect(readAs(received, 'traceparent')).toHaveLength(1)
    expect(readAs(received, 'tracestate')).toEqual([])
  })

  it('hop-by-hop look-alikes', async () => {
    const received = await through('/plain/x', [['Transfer_Encoding', 'forged-chunked'], ['Keep_Alive', 'forged'], ['Proxy_Authorization', 'forged'], ['Proxy_Connection', 'forged']])
    expectNothingForged(received)
  })

  it('keeps every other header, with underscores or not', async () => {
    const received = await through('/plain/x', [['X_Custom_Thing', 'kept-1'], ['X-Custom', 'kept-2'], ['Accept_Language', 'kept-3'], ['X-Bouncers', 'kept-4'], ['X-Forwardedness', 'kept-5']])
    expect(received.headers).toMatchObject({ x_custom_thing: 'kept-1', 'x-custom': 'kept-2', accept_language: 'kept-3', 'x-bouncers': 'kept-4', 'x-forwardedness': 'kept-5' })
  })
})

// Headers that other identity-aware proxies write for their upstreams, and that an application
// migrated from behind one still believes: a caller's copy would name anyone it liked.
const FOREIGN_IDENTITY: Array<[string, string]> = [
  ['X-Auth-Request-User', 'forged-admin'], ['X-Auth-Request-Email', 'forged@corp.example'], ['X-Auth-Request-Groups', 'forged-admins'],
  ['X-Auth-Request-Preferred-Username', 'forged-admin'], ['X-Auth-Request-Access-Token', 'forged-token'],
  ['X-Forwarded-User', 'forged-admin'], ['X-Forwarded-Email', 'forged@corp.example'], ['X-Forwarded-Groups', 'forged-admins'],
  ['X-Forwarded-Preferred-Username', 'forged-admin'], ['X-Forwarded-Access-Token', 'forged-token'],
  ['Remote-User', 'forged-admin'], ['X-Remote-User', 'forged-admin'], ['X-Remote-Group', 'forged-admins'], ['X-Remote-Extra-Scopes', 'forged-all'],
  ['X-Webauth-User', 'forged-admin'], ['X-Webauth-Email', 'forged@corp.example'],
  ['X-Pomerium-Jwt-Assertion', 'forged-jwt'], ['X-Pomerium-Claim-Email', 'forged@corp.example'],
  ['X-Amzn-Oidc-Data', 'forged-jwt'], ['X-Amzn-Oidc-Identity', 'forged-admin'], ['X-Amzn-Oidc-Accesstoken', 'forged-token'],
  ['X-Amzn-Mtls-Clientcert', 'forged-cert'],
  ['X-Ms-Client-Principal', 'forged-principal'], ['X-Ms-Client-Principal-Name', 'forged@corp.example'], ['X-Ms-Client-Principal-Id', 'forged-id'],
  ['X-Ms-Token-Aad-Access-Token', 'forged-token'], ['X-Arr-ClientCert', 'forged-cert'],
  ['Cf-Access-Jwt-Assertion', 'forged-jwt'], ['Cf-Access-Authenticated-User-Email', 'forged@corp.example'], ['Cf-Client-Cert-Sha256', 'forged-hash'],
  ['X-Goog-Authenticated-User-Email', 'accounts.google.com:forged@corp.example'], ['X-Goog-Authenticated-User-Id', 'forged-id'],
  ['X-Goog-Iap-Jwt-Assertion', 'forged-jwt'],
  ['X-Forwarded-Client-Cert', 'By=spiffe://forged;Hash=0;Subject="CN=forged"'],
  ['X-SSL-Client-Cert', 'forged-cert'], ['X-SSL-Client-Verify', 'forged-SUCCESS'], ['X-SSL-Client-S-DN', 'forged-CN=admin'], ['X-SSL-Client-DN', 'forged-CN=admin'],
  ['Ssl-Client-Cert', 'forged-cert'], ['Ssl-Client-Verify', 'forged-SUCCESS'], ['X-SSL-Cert', 'forged-cert'],
  ['X-Client-Cert', 'forged-cert'], ['X-Client-Cert-Present', 'forged-true'], ['X-Client-Verify', 'forged-SUCCESS'], ['X-Client-DN', 'forged-CN=admin'],
  // Look-alikes, as Django's HTTP_REMOTE_USER or a folding stack reads them.
  ['X_Auth_Request_User', 'forged-admin'], ['REMOTE_USER', 'forged-admin'], ['Cf_Access_Authenticated_User_Email', 'forged@corp.example'],
]

describe('identity headers of other proxies', () => {
  it('are removed from a client’s request: an upstream migrated from behind such a proxy sees no forged identity', async () => {
    const received = await through('/plain/x', FOREIGN_IDENTITY)
    expectNothingForged(received)
  })

  it('are removed from a trusted proxy’s request too: the gateway vouches for its callers in X-Bouncer-Assertion', async () => {
    const received = await through('/plain/x', FOREIGN_IDENTITY, { localAddress: '127.0.0.2' })
    expectNothingForged(received)
  })

  it('an upstream’s configured headers may still set one', async () => {
    const received = await through('/keyed/x', [['X-Remote-User', 'forged-admin'], ['Cf-Access-Client-Id', 'forged-id']])
    expectNothingForged(received)
    expect(readAs(received, 'x-remote-user')).toEqual([['x-remote-user', 'svc-gateway']])
  })

  it('look-alike names that belong to no proxy pass', async () => {
    const received = await through('/plain/x', [['X-Remote-Address-Book', 'kept-1'], ['X-Authenticity', 'kept-2'], ['Cf-Ray', 'kept-3'], ['X-Goog-Api-Client', 'kept-4'], ['X-Ms-Request-Id', 'kept-5']])
    expect(received.headers).toMatchObject({ 'x-remote-address-book': 'kept-1', 'x-authenticity': 'kept-2', 'cf-ray': 'kept-3', 'x-goog-api-client': 'kept-4', 'x-ms-request-id': 'kept-5' })
  })
})
