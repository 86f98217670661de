// Issue 22.10: upstreams build absolute URLs (redirects, reset links, callbacks) from
// X-Forwarded-Host, so the gateway repeats a client's Host there only when server.hosts names it;
// a trusted proxy's own X-Forwarded-Host is kept as it sent it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gateway: TestGateway
let port: number

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.2/32'], hosts: ['api.example.com', '*.apps.example.com', 'admin.example.com:8443'] },
    upstreams: [{ name: 'echo', url: upstream.url }],
    routes: [{ id: 'echo', path: '/*', upstream: 'echo', public: true }],
  })
  port = Number(new URL(gateway.url).port)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

async function forwardedHost(host: string, extra = '', localAddress?: string): Promise<string | undefined> {
  const res = await rawRequest(port, `GET /x HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`, { localAddress })
  expect(res.status, res.body).toBe(200)
  const received = JSON.parse(res.body) as Received
  const values = received.rawHeaders.filter((_, i) => i % 2 === 1 && received.rawHeaders[i - 1]?.toLowerCase() === 'x-forwarded-host')
  expect(values.length).toBeLessThanOrEqual(1)
  return values[0]
}

describe('X-Forwarded-Host', () => {
  it.each(['api.example.com', 'API.Example.COM:8080', 'reports.apps.example.com', 'a.b.apps.example.com', 'admin.example.com:8443'])(
    'repeats a Host that server.hosts names: %s',
    async (host) => {
      expect(await forwardedHost(host)).toBe(host)
    },
  )

  it.each(['evil.example', 'apps.example.com', 'evil-apps.example.com', 'admin.example.com', 'admin.example.com:443', 'api.example.com.evil.org', '127.0.0.1'])(
    'is omitted for a Host it does not name: %s',
    async (host) => {
      expect(await forwardedHost(host)).toBeUndefined()
    },
  )

  it('never believes an X-Forwarded-Host from a peer that is not a trusted proxy', async () => {
    expect(await forwardedHost('evil.example', 'X-Forwarded-Host: api.example.com\r\n')).toBeUndefined()
    expect(await forwardedHost('api.example.com', 'X-Forwarded-Host: evil.example\r\n')).toBe('api.example.com')
  })

  it('keeps a trusted proxy’s X-Forwarded-Host when server.hosts names it, and checks its Host otherwise', async () => {
    expect(await forwardedHost('10.0.0.9:8080', 'X-Forwarded-Host: reports.apps.example.com\r\n', '127.0.0.2')).toBe('reports.apps.example.com')
    expect(await forwardedHost('api.example.com', '', '127.0.0.2')).toBe('api.example.com')
    expect(await forwardedHost('evil.example', '', '127.0.0.2')).toBeUndefined()
  })

  // Found by an adversarial probe (helper): HAProxy with option forwardfor (and nginx's defaults) pass
  // a client's X-Forwarded-Host on, and it reached the upstream as the proxy's word.
  it('does not take a trusted proxy’s X-Forwarded-Host that server.hosts does not name (a client’s, passed on)', async () => {
    expect(await forwardedHost('10.0.0.9:8080', 'X-Forwarded-Host: evil.example\r\n', '127.0.0.2')).toBeUndefined()
    expect(await forwardedHost('api.example.com', 'X-Forwarded-Host: evil.example\r\n', '127.0.0.2')).toBe('api.example.com')
  })
})

describe('server.hosts in the config', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bouncer-hosts-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('bouncer check names an entry that is not a host, with its line and column', async () => {
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, 'server:\n  hosts:\n    - api.example.com\n    - "api.*.com"\naudit:\n  sinks: []\n')
    const result = await runCliInProcess(['check', '--config', file])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`${file}:4:7: server.hosts[1]: invalid host "api.*.com": write it like api.example.com, *.example.com or api.example.com:8443`)
  })
})
