// Found by an adversarial probe (helper "authz"): CGI meta-variables as request headers. gunicorn
// takes a `SCRIPT_NAME` header (any case, with its underscore) from a trusted proxy — by default
// any peer on 127.0.0.1, a gateway beside it — and routes the app on the path without that
// prefix; it takes `PATH_INFO` and, where configured, `REMOTE_USER` the same way. The gateway passed
// them on, so `GET /public/admin/users` with `SCRIPT_NAME: /public`, matched and let through as the
// public route, ran the app's `/admin/users`. Flask's ReverseProxied recipe reads `X-Script-Name`
// alike. Each is sent through a raw socket; the assertions are on what a real upstream received.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { foldHeaderName } from '../../src/http/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway({
    upstreams: [
      { name: 'app', url: upstream.url },
      { name: 'mounted', url: upstream.url, headers: { SCRIPT_NAME: '/reports' } },
    ],
    routes: [
      { id: 'public', path: '/public/*', upstream: 'app', public: true },
      { id: 'mounted', path: '/reports/*', upstream: 'mounted', public: true },
    ],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

async function through(path: string, headers: Array<[string, string]>): Promise<Received> {
  const lines = headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')
  const res = await rawRequest(Number(new URL(gateway.url).port), `GET ${path} HTTP/1.1\r\nHost: gw\r\n${lines}Connection: close\r\n\r\n`)
  expect(res.status, res.body).toBe(200)
  return JSON.parse(res.body) as Received
}

/** The received headers a WSGI server reads as one of `variables` (upper case, `-` as `_`). */
function readAsCgi(received: Received, variables: string[]): string[] {
  const found: string[] = []
  for (let i = 0; i < received.rawHeaders.length; i += 2) {
    const name = received.rawHeaders[i] as string
    if (variables.includes(foldHeaderName(name.toLowerCase()).replaceAll('-', '_').toUpperCase())) found.push(`${name}: ${received.rawHeaders[i + 1]}`)
  }
  return found
}

describe('CGI meta-variables a client sends are removed', () => {
  it('SCRIPT_NAME and PATH_INFO, in every spelling gunicorn and CGI servers read', async () => {
    const received = await through('/public/admin/users', [
      ['SCRIPT_NAME', '/public'], ['script_name', '/public'], ['Script-Name', '/public'], ['PATH_INFO', '/admin/users'], ['Path.Info', '/admin/users'],
    ])
    expect(readAsCgi(received, ['SCRIPT_NAME', 'PATH_INFO'])).toEqual([])
    expect(received.url).toBe('/public/admin/users')
  })

  it('REMOTE_USER, REMOTE_ADDR, AUTH_TYPE and the other meta-variables of RFC 3875', async () => {
    const variables = ['AUTH_TYPE', 'GATEWAY_INTERFACE', 'PATH_TRANSLATED', 'QUERY_STRING', 'REMOTE_ADDR', 'REMOTE_HOST', 'REMOTE_IDENT', 'REMOTE_USER', 'REQUEST_METHOD', 'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'SERVER_SOFTWARE']
    const received = await through('/public/x', variables.map((name) => [name, 'forged']))
    expect(readAsCgi(received, variables)).toEqual([])
  })

  it('X-Script-Name, which Flask\'s ReverseProxied recipe strips from the path', async () => {
    const received = await through('/public/admin/users', [['X-Script-Name', '/public'], ['X_Script_Name', '/public']])
    expect(readAsCgi(received, ['HTTP_X_SCRIPT_NAME', 'X_SCRIPT_NAME'])).toEqual([])
  })
})

describe('what stays', () => {
  it('an upstream\'s configured SCRIPT_NAME is sent, and a client cannot replace it', async () => {
    const received = await through('/reports/x', [['SCRIPT_NAME', '/'], ['script-name', '/']])
    expect(readAsCgi(received, ['SCRIPT_NAME'])).toEqual(['script_name: /reports'])
  })

  it('Content-Type and Content-Length, which are HTTP fields as well as CGI variables', async () => {
    const received = await through('/public/x', [['Content-Type', 'text/plain']])
    expect(received.headers['content-type']).toBe('text/plain')
  })
})
