// Found by an adversarial probe (helper "authz"): Unicode compatibility characters in a path. An
// upstream that normalizes to NFKC before it routes (Ruby's Addressable URI#normalize, an app that
// calls unicodedata.normalize or String#normalize) reads fullwidth `．．` (U+FF0E) as `..`, `／`
// (U+FF0F) as `/` and `Ａdmin` as `Admin`. The gateway matched them as plain segments of the
// allowed `/reports/*` route and forwarded them, so such an upstream ran `/reports/admin/x`, which
// the policy denies. Now a segment whose NFKC form is a dot segment or holds a separator is refused
// (400 bad_path), and routes match a non-ASCII segment in its NFKC form.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest, type RawResponse } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let caseSensitive: TestGateway
let token: string

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  const config = (server: Record<string, unknown>) => ({
    server,
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp' }], policies: ['reports-but-admin'] }],
    policies: [{
      name: 'reports-but-admin',
      statements: [
        { sid: 'AllowReports', effect: 'allow', actions: ['GET'], routes: ['reports*', 'legacy'] },
        { sid: 'DenyAdmin', effect: 'deny', actions: ['*'], routes: ['reports.admin'] },
      ],
    }],
    upstreams: [{ name: 'echo', url: upstream.url }],
    routes: [
      { id: 'reports.admin', path: '/reports/admin/*', upstream: 'echo' },
      { id: 'reports', path: '/reports/*', upstream: 'echo' },
      { id: 'legacy', path: '/legacy/*', upstream: 'echo', path_params: true },
    ],
  })
  gateway = await startTestGateway(config({}))
  caseSensitive = await startTestGateway(config({ case_sensitive_paths: true }))
  for (const gw of [gateway, caseSensitive]) await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
  token = await idp.token('looker-reports')
})

afterAll(async () => {
  await gateway?.close()
  await caseSensitive?.close()
  await upstream?.close()
  await idp?.stop()
})

beforeEach(() => {
  upstream.received.length = 0
})

function get(target: string, gw = gateway): Promise<RawResponse> {
  return rawRequest(Number(new URL(gw.url).port), `GET ${target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)
}

function code(res: RawResponse): string | undefined {
  return res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(res.body) as { code: string }).code : undefined
}

describe('compatibility forms of the separators', () => {
  it('fullwidth dots, slashes and backslashes, and escapes NFKC brings, are refused 400 bad_path and never forwarded', async () => {
    for (const target of [
      '/reports/x/%EF%BC%8E%EF%BC%8E/admin/x', // ．．
      '/reports/x/%EF%B9%92%EF%B9%92/admin/x', // ﹒﹒ small full stop
      '/reports%EF%BC%8Fadmin/x', // ／
      '/reports/x%EF%BC%BC..%EF%BC%BCadmin/x', // ＼
      '/reports/admin%EF%BC%8E/x', // a trailing ．
      '/reports/admin%EF%BC%9Bx/y', // ；
      '/reports/x/%EF%BC%85%EF%BC%92%EF%BD%85%EF%BC%85%EF%BC%92%EF%BD%85/admin/x', // ％２ｅ％２ｅ
    ]) {
      const res = await get(target)
      expect({ status: res.status, code: code(res) }, target).toEqual({ status: 400, code: 'bad_path' })
    }
    expect(upstream.received).toEqual([])
  })
})

describe('compatibility forms of letters', () => {
  it('a fullwidth spelling of a route\'s literal matches that route, and is denied as it is', async () => {
    for (const target of ['/reports/%EF%BC%A1dmin/x', '/reports/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/x']) {
      const res = await get(target)
      expect({ status: res.status, code: code(res) }, target).toEqual({ status: 403, code: 'policy_denied' })
    }
    expect(upstream.received).toEqual([])
  })

  it('with case_sensitive_paths too: fullwidth lower-case `ａｄｍｉｎ` is `admin` in NFKC', async () => {
    const res = await get('/reports/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/x', caseSensitive)
    expect({ status: res.status, code: code(res) }).toEqual({ status: 403, code: 'policy_denied' })
    expect(upstream.received).toEqual([])
  })
})

describe('what stays allowed', () => {
  it('other non-ASCII segments, a fullwidth dot inside a segment, and parameters beside them, are forwarded as sent', async () => {
    for (const target of ['/reports/caf%C3%A9', '/reports/%E6%97%A5%E6%9C%AC/x', '/reports/a%EF%BC%8Eb', '/legacy/caf%C3%A9;jsessionid=1']) {
      const res = await get(target)
      expect(res.status, `${target}: ${res.body}`).toBe(200)
    }
    expect(upstream.received.map((r) => r.url)).toEqual(['/reports/caf%C3%A9', '/reports/%E6%97%A5%E6%9C%AC/x', '/reports/a%EF%BC%8Eb', '/legacy/caf%C3%A9;jsessionid=1'])
  })
})
