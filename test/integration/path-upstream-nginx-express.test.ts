// Written by an adversarial probe (helper), which this held up against: real nginx (Debian package) and Express 5 as the upstream behind the gateway,
// a protected /admin/* and a public /*. Tricky paths sent without a credential must never reach
// either server's admin handler.
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProcess, type Started } from '../../bench/lib/processes.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest } from '../helpers/raw.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let nginx: Started
let nginxPort: number
let app: Server
let idp: TestIdentityProvider
let viaNginx: TestGateway
let viaExpress: TestGateway

const TRICKS = [
  '/%61dmin', '/adm%69n/x', '/ADMIN', '/Admin/', '/admin%2Fx', '/admin%2fx', '/public/../admin', '/public/%2e%2e/admin',
  '/public/%2E%2E/admin', '/public/.%2e/admin', '/admin.', '/admin%20', '/admin%09', '/admin;x=1', '/admin%3Bx', '/admin%00',
  '/admin%252f', '/%2561dmin', '//admin', '/./admin', '/%2e/admin', '/public%2F..%2Fadmin', '/public/..%5Cadmin',
  '/public/..%C0%AFadmin', '/public/%C0%AE%C0%AE/admin', '/%EF%BC%A1dmin', '/admin%23', '/admin%3F', '/adm%C4%B0n', '/ADM%C4%B1N',
  '/a%C5%BFdmin', '/public/*/../admin', '/admin/%2e%2e', '/public;/../admin', '/public/..;/admin',
  'http://127.0.0.1/admin', '/admin#x', '/admin\\x',
]

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-path-nginx-'))
  nginxPort = await closedPort()
  const prefix = join(dir, 'nginx')
  await mkdir(join(prefix, 'logs'), { recursive: true })
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${nginxPort};
    location = /admin { return 200 "ADMIN-SECRET $uri\\n"; }
    location /admin/ { return 200 "ADMIN-SECRET $uri\\n"; }
    location ~* ^/admin(/|$) { return 200 "ADMIN-SECRET-CI $uri\\n"; }
    location / { return 200 "public $uri\\n"; }
  }
}
`)
  nginx = await startProcess('/usr/sbin/nginx', ['-p', prefix, '-c', conf], null, { core: null })
  await waitFor(async () => {
    try {
      const res = await request(`http://127.0.0.1:${nginxPort}/`)
      await res.body.dump()
      return true
    } catch {
      return false
    }
  }, 'nginx', 20_000)

  const api = express()
  api.all('/admin', (_req, res) => res.send('ADMIN-SECRET'))
  api.use('/admin', (_req, res) => res.send('ADMIN-SECRET'))
  api.all('/{*rest}', (req, res) => res.send(`public ${req.path}`))
  app = api.listen(0, '127.0.0.1')
  await once(app, 'listening')

  idp = await startIdentityProvider()
  const base = (url: string) => ({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['ES256', 'RS256'] }],
    roles: [{ name: 'admins', assumed_by: [{ issuer: 'corp', subject: 'admin-*' }], policies: ['admin'] }],
    policies: [{ name: 'admin', statements: [{ sid: 'Admin', effect: 'allow', actions: ['*'], routes: ['admin'] }] }],
    upstreams: [{ name: 'up', url }],
    routes: [
      { id: 'admin', path: '/admin/*', upstream: 'up' },
      { id: 'site', path: '/*', upstream: 'up', public: true },
    ],
  })
  viaNginx = await startTestGateway(base(`http://127.0.0.1:${nginxPort}`))
  viaExpress = await startTestGateway(base(`http://127.0.0.1:${(app.address() as AddressInfo).port}`))
}, 60_000)

afterAll(async () => {
  await viaNginx?.close()
  await viaExpress?.close()
  app?.close()
  await nginx?.stop()
  await idp?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function send(gw: TestGateway, target: string): Promise<{ status: number; body: string }> {
  const res = await rawRequest(Number(new URL(gw.url).port), `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
  return { status: res.status, body: res.body }
}

describe('held up: nginx and Express behind the gateway', () => {
  it('control: /admin without a credential is 401 on both', async () => {
    expect((await send(viaNginx, '/admin')).status).toBe(401)
    expect((await send(viaExpress, '/admin')).status).toBe(401)
  })

  it('nginx: no trick reaches the admin location', async () => {
    for (const t of TRICKS) {
      const res = await send(viaNginx, t)
      expect(res.body, t).not.toContain('ADMIN-SECRET')
    }
  })

  it('Express 5: no trick reaches the admin handler', async () => {
    for (const t of TRICKS) {
      const res = await send(viaExpress, t)
      expect(res.body, t).not.toContain('ADMIN-SECRET')
    }
  })
})
