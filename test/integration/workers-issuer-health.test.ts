// With server.workers each worker fetches its issuers' key sets itself, so one worker's issuer can
// be unavailable while another's is ready: then about half the requests with valid tokens are
// refused. The console's catalog (GET /api/catalog) was passed to whichever worker answered, and
// showed that worker's state as the gateway's: "ready" half the time. The primary now asks every
// worker: the issuer's state is its worst worker's, and each worker's is listed (and drawn by the
// console where they differ).
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Catalog } from '../../src/admin/index.ts'
import { collectPageErrors, launchChromium, openPage, showPage, signInWithToken } from '../helpers/browser.ts'
import type { ServeProcess } from '../helpers/cli.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN = 'workers-issuer-health-admin-0123'
let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess
/** The provider's JWKS through a relay that answers the first fetch and refuses every later one (503). */
let relay: Server
let fetches = 0
let browser: Browser | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-issuer-health-'))
  idp = await startIdentityProvider({ tokenTtlSeconds: 3600 })
  const discovery = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string }
  relay = createServer(async (_req, res) => {
    if (fetches++ > 0) return void res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance')
    const jwks = await fetch(discovery.jwks_uri)
    res.writeHead(jwks.status, { 'content-type': 'application/json' }).end(await jwks.text())
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    admin: { listen: '127.0.0.1:0', token: ADMIN },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], jwks_uri: `http://127.0.0.1:${(relay.address() as AddressInfo).port}/jwks` }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  })))
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await gateway?.stop('SIGKILL')
  relay?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function catalog(): Promise<Catalog> {
  const answer = await request(`${gateway.adminUrl}/api/catalog`, { headers: { authorization: `Bearer ${ADMIN}` } })
  expect(answer.statusCode).toBe(200)
  return (await answer.body.json()) as Catalog
}

it('the catalog shows an issuer as its worst worker has it, and every worker\'s state', async () => {
  // Both workers have tried: one holds the keys, the other was refused.
  await waitFor(async () => {
    const workers = (await catalog()).issuers[0]?.workers ?? []
    return workers.length === 2 && workers.every((w) => w.state !== 'loading')
  }, 'both workers to have fetched the key set once', 30_000)
  const [issuer] = (await catalog()).issuers
  expect(issuer).toMatchObject({ name: 'corp', state: 'unavailable' })
  expect(issuer?.last_error).toMatch(/503/)
  expect(issuer?.workers?.map((w) => w.state).sort()).toEqual(['ready', 'unavailable'])
  expect(issuer?.workers?.map((w) => w.worker).sort()).toEqual(['w1', 'w2'])
  const ready = issuer?.workers?.find((w) => w.state === 'ready')
  expect(ready?.keys).toBeGreaterThan(0)
  expect(ready?.last_error).toBeNull()

  // HEAD answers as GET does, without the body.
  const head = await request(`${gateway.adminUrl}/api/catalog`, { method: 'HEAD', headers: { authorization: `Bearer ${ADMIN}` } })
  expect(head.statusCode).toBe(200)
  expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(await catalog())))
  await head.body.dump()
  // A caller the workers refuse is refused as one gateway refuses it.
  const refused = await request(`${gateway.adminUrl}/api/catalog`, { headers: { authorization: 'Bearer not-the-token' } })
  expect(refused.statusCode).toBe(401)
  expect(refused.headers['content-type']).toMatch(/problem\+json/)
  await refused.body.dump()

  // What an operator sees in the console: unavailable, and which worker is.
  browser = await launchChromium()
  const { page } = await openPage(browser)
  const errors = collectPageErrors(page)
  await signInWithToken(page, gateway.adminUrl, ADMIN)
  await showPage(page, gateway.adminUrl, 'catalog')
  const row = page.locator('tr', { hasText: 'corp' })
  expect(await row.locator('td.bad').first().textContent()).toMatch(/^unavailable/)
  const states = await row.locator('ul.worker-states li').allTextContents()
  expect(states.map((s) => s.replace(/^w[12]: /, '')).sort()).toEqual(['ready', expect.stringMatching(/^unavailable \(.*503.*\)$/)])
  expect(errors).toEqual([])
}, 120_000)
