// Found by an adversarial probe (helper): /adm%C4%B0n (İ) without a credential reached Caddy's admin
// handler through the public catch-all. Path differentials between the gateway and a real Caddy
// (Debian package) as the upstream. Caddy's `path` matcher is case-insensitive: it lower-cases the decoded request path
// with Go's strings.ToLower, which uses Unicode *simple* case mapping: U+0130 (İ, LATIN CAPITAL
// LETTER I WITH DOT ABOVE) lower-cases to plain ASCII `i` there. JavaScript's toLowerCase() uses
// the full mapping (`i` + U+0307), so the gateway's foldPathCase reads `admİn` as another segment.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProcess, type Started } from '../../bench/lib/processes.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest } from '../helpers/raw.ts'
import { waitFor } from '../helpers/wait.ts'

const CADDY = '/usr/bin/caddy'

let dir: string
let caddy: Started
let caddyPort: number
let idp: TestIdentityProvider
let gw: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-path-caddy-'))
  await mkdir(join(dir, 'xdg'), { recursive: true })
  caddyPort = await closedPort()
  const file = join(dir, 'Caddyfile')
  await writeFile(file, `{
	admin off
	auto_https off
}
:${caddyPort} {
	bind 127.0.0.1
	@admin path /admin /admin/*
	handle @admin {
		respond "ADMIN-SECRET {http.request.uri.path}" 200
	}
	handle {
		respond "public {http.request.uri.path}" 200
	}
}
`)
  caddy = await startProcess(CADDY, ['run', '--config', file, '--adapter', 'caddyfile'], null, {
    core: null,
    env: { XDG_DATA_HOME: join(dir, 'xdg'), XDG_CONFIG_HOME: join(dir, 'xdg'), HOME: dir },
  })
  await waitFor(async () => {
    try {
      const res = await request(`http://127.0.0.1:${caddyPort}/`)
      await res.body.dump()
      return true
    } catch {
      return false
    }
  }, `caddy\n${caddy.output()}`, 20_000)
  idp = await startIdentityProvider()
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['ES256', 'RS256'] }],
    roles: [{ name: 'admins', assumed_by: [{ issuer: 'corp', subject: 'admin-*' }], policies: ['admin'] }],
    policies: [{ name: 'admin', statements: [{ sid: 'Admin', effect: 'allow', actions: ['GET'], routes: ['admin'] }] }],
    upstreams: [{ name: 'caddy', url: `http://127.0.0.1:${caddyPort}` }],
    routes: [
      { id: 'admin', methods: ['GET'], path: '/admin/*', upstream: 'caddy' },
      { id: 'site', methods: ['GET'], path: '/*', upstream: 'caddy', public: true },
    ],
  })
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await caddy?.stop()
  await idp?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function viaGateway(path: string): Promise<{ status: number; body: string }> {
  const res = await rawRequest(Number(new URL(gw.url).port), `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
  return { status: res.status, body: res.body }
}

async function direct(path: string): Promise<string> {
  const res = await rawRequest(caddyPort, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
  return res.body
}

describe('Caddy behind the gateway: the admin handler never runs without a credential', () => {
  it('control: Caddy itself serves /admin and /ADMIN with the admin handler', async () => {
    expect(await direct('/admin')).toContain('ADMIN-SECRET')
    expect(await direct('/ADMIN/x')).toContain('ADMIN-SECRET')
  })

  it('control: /admin and /ADMIN through the gateway without a credential are 401', async () => {
    for (const path of ['/admin', '/ADMIN', '/admin/', '/Admin/x']) {
      const res = await viaGateway(path)
      expect(res.status, path).toBe(401)
    }
  })

  it('precondition: Caddy itself runs the admin handler for /adm%C4%B0n (U+0130, İ)', async () => {
    expect(await direct('/adm%C4%B0n')).toContain('ADMIN-SECRET')
  })

  it('/adm%C4%B0n (İ, U+0130) without a credential does not reach Caddy\'s admin handler', async () => {
    const res = await viaGateway('/adm%C4%B0n')
    expect(res.body).not.toContain('ADMIN-SECRET')
    expect(res.status).not.toBe(200)
  })

  it('/%C4%B0... variants: /ADM%C4%B0N/x and /adm%c4%b0n/ without a credential do not reach the admin handler', async () => {
    for (const path of ['/ADM%C4%B0N/x', '/adm%c4%b0n/']) {
      const res = await viaGateway(path)
      expect(res.body, path).not.toContain('ADMIN-SECRET')
    }
  })

  it('held up: the other tricks do not reach the admin handler', async () => {
    const tricks = [
      '/%61dmin', '/adm%69n', '/admin%2Fx', '/public/../admin', '/public/%2e%2e/admin', '/admin.', '/admin%20',
      '/admin;x=1', '/adm%E2%84%AAin', '/%EF%BC%A1dmin', '/admin%00', '/admin%252f', '//admin', '/./admin',
      '/ADM%C4%B1N', '/a%C5%BFdmin',
    ]
    for (const path of tricks) {
      const res = await viaGateway(path)
      expect(res.body, path).not.toContain('ADMIN-SECRET')
    }
  })
})
