// No client, log line, audit record, admin answer or CLI output ever shows a secret value or the
// master key: a real `bouncer serve` with debug logs and a stdout audit sink is driven through
// successes, every kind of failure, the admin API and the secrets CLI, and then everything it
// wrote (and the databases on disk) is searched for the values.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let serve: ServeProcess
let configPath: string
const masterKey = randomBytes(32).toString('base64')
const upstreamToken = `upstream-${randomBytes(18).toString('hex')}`
const adminToken = `admin-${randomBytes(18).toString('hex')}`
const env = { BOUNCER_MASTER_KEY: masterKey }
/** Everything anyone outside the gateway process could read, collected as the test goes. */
const seen: string[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-leak-'))
  idp = await startIdentityProvider()
  // The upstream checks the credential and never repeats it (what a client sees of it is up to us).
  upstream = await startUpstream((req, res) => {
    if (req.headers.authorization !== `Bearer ${upstreamToken}`) {
      res.writeHead(401).end('wrong credential')
    } else if (req.url?.startsWith('/fail')) {
      res.writeHead(500).end('upstream broke')
    } else if (req.url?.startsWith('/reset')) {
      req.socket.destroy()
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('report rows')
    }
  })
  const store = openEmbeddedStore(join(dir, 'secrets.db'), Buffer.from(masterKey, 'base64'))
  store.put('sales-token', upstreamToken)
  store.put('admin-token', adminToken)
  store.close()
  configPath = join(dir, 'bouncer.yaml')
  await writeFile(configPath, stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0', token: '${secret:admin-token}' },
    issuers: [{ name: 'corp-sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp-sso' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['sales'] }] }],
    upstreams: [{ name: 'sales', url: upstream.url, headers: { Authorization: 'Bearer ${secret:sales-token}' }, timeout: '2s', identity_assertion: true }],
    routes: [{ id: 'sales', path: '/*', upstream: 'sales' }],
    audit: { sinks: [{ type: 'stdout' }, { type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '50ms' },
    secrets: {
      store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' },
      refresh_interval: '200ms',
      // A careless hook: it prints the new value on stdout and stderr, keeps a copy for the test, and fails.
      rotation: { 'partner-key': { every: '1s', generate: 24, hook: `v=$(cat); printf '%s\\n' "$v" >> ${join(dir, 'hook-saw')}; echo "installing $v"; echo "failed to install $v" >&2; exit 1` } },
    },
    telemetry: { log_level: 'debug' },
  }))
  serve = await startServe(['--config', configPath], { env })
})

afterAll(async () => {
  await serve?.stop()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function call(url: string, init: { method?: 'GET' | 'POST' | 'DELETE'; headers?: Record<string, string>; body?: string } = {}): Promise<number> {
  const res = await request(url, { method: init.method ?? 'GET', headers: init.headers, body: init.body })
  seen.push(JSON.stringify(res.headers), await res.body.text())
  return res.statusCode
}

async function cli(args: string[], input?: string): Promise<number | null> {
  const result = await runCliInProcess([...args, '--config', configPath], { env, input })
  seen.push(result.stdout, result.stderr)
  return result.code
}

describe('secret values', () => {
  it('appear nowhere: not to clients, not in logs or audit records, not from the admin API or the CLI', { timeout: 60_000 }, async () => {
    const token = await idp.token('looker-reports')
    const bearer = { authorization: `Bearer ${token}` }
    expect(await call(`${serve.url}/report`, { headers: bearer })).toBe(200) // the credential was injected
    expect(await call(`${serve.url}/fail`, { headers: bearer })).toBe(500)
    expect(await call(`${serve.url}/reset`, { headers: bearer })).toBe(502)
    expect(await call(`${serve.url}/report`, { method: 'POST', headers: bearer })).toBe(403)
    expect(await call(`${serve.url}/report`, { headers: { authorization: 'Bearer not-a-jwt' } })).toBe(401)
    expect(await call(`${serve.url}/report`)).toBe(401)
    expect(await call(`${serve.url}/.well-known/jwks.json`)).toBe(200)

    const admin = { authorization: `Bearer ${adminToken}` }
    expect(await call(`${serve.adminUrl}/api/secrets`)).toBe(401)
    expect(await call(`${serve.adminUrl}/api/secrets`, { headers: { authorization: 'Bearer wrong' } })).toBe(401)
    for (const path of ['secrets', 'routes', 'roles', 'policies', 'audit']) {
      expect(await call(`${serve.adminUrl}/api/${path}`, { headers: admin }), path).toBe(200)
    }
    expect(await call(`${serve.adminUrl}/api/explain`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ token, method: 'DELETE', path: '/report' }) })).toBe(200)
    expect(await call(`${serve.adminUrl}/api/reload`, { method: 'POST', headers: admin })).toBe(200)
    expect(await call(`${serve.adminUrl}/metrics`)).toBe(200)

    expect(await cli(['secrets', 'list'])).toBe(0)
    expect(await cli(['secrets', 'versions', 'sales-token'])).toBe(0)
    expect(await cli(['secrets', 'get', 'sales-token'])).not.toBe(0) // without --reveal it refuses
    expect(await cli(['check'])).toBe(0)
    expect(await cli(['audit', '--json', '--limit', '100'])).toBe(0)
    expect(await cli(['secrets', 'get', 'nope', '--reveal'])).not.toBe(0)

    // The careless hook has run (and failed) at least twice by now.
    await waitFor(async () => (await readFile(join(dir, 'hook-saw'), 'utf8').catch(() => '')).trim().split('\n').length >= 2, 'the rotation hook to run twice')
    await waitFor(() => /secret rotation hook failed/.test(serve.stdout() + serve.stderr()), 'the hook failure to be logged')
    const hookValues = (await readFile(join(dir, 'hook-saw'), 'utf8')).trim().split('\n')
    await serve.stop()

    seen.push(serve.stdout(), serve.stderr())
    const output = seen.join('\n')
    expect(output).toMatch(/"route":"sales"/) // the audit records are in there...
    expect(output).toMatch(/"secret_name":"partner-key".*secret rotation hook failed/) // ...and the hook's failure, scrubbed
    expect(output).toContain('[redacted]')

    const files = await readdir(dir)
    const onDisk = (await Promise.all(files.filter((f) => /\.db(-wal)?$/.test(f)).map((f) => readFile(join(dir, f))))).map((b) => b.toString('latin1'))
    expect(onDisk.length).toBeGreaterThanOrEqual(2)
    for (const value of [upstreamToken, adminToken, masterKey, ...hookValues]) {
      expect(output.includes(value), `a secret value reached the output: ${value.slice(0, 10)}…`).toBe(false)
      for (const file of onDisk) expect(file.includes(value), 'a secret value is on disk in clear').toBe(false)
    }
  })
})
