// Found by a probe: after a worker crashed, its replacement listened (SO_REUSEPORT: the kernel at once
// sent it a share of new connections) before its issuers' keys had loaded, and answered valid tokens
// 503 identity_provider_unavailable "still loading" while the other worker, and /readyz, were fine.
// A replacement now listens once its issuers' first key loads have been tried (at most 5 s).
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { crashWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess
/** The provider's JWKS, through a relay the test can hold (a provider slow to answer). */
let relay: Server
let hold: ReturnType<typeof deferred<void>> | null = null
let heldFetches = 0

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-replacement-keys-'))
  idp = await startIdentityProvider({ tokenTtlSeconds: 3600, clients: [{ clientId: 'alice-app', secret: 'alice-app-secret-0123456789abcdef' }] })
  const discovery = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string }
  relay = createServer(async (_req, res) => {
    if (hold) {
      heldFetches++
      await hold.promise
    }
    const jwks = await fetch(discovery.jwks_uri)
    res.writeHead(jwks.status, { 'content-type': 'application/json' }).end(await jwks.text())
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], jwks_uri: `http://127.0.0.1:${(relay.address() as AddressInfo).port}/jwks` }],
    roles: [{ name: 'analyst', assumed_by: [{ issuer: 'corp', subject: 'alice-app' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  }), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  hold?.resolve()
  await gateway?.stop('SIGKILL')
  relay?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

const listening = (id: string) => gateway.stderr().split('\n').filter((line) => line.includes(`"worker":"${id}"`) && line.includes('"msg":"worker listening"')).length

it('a crashed worker\'s replacement takes connections only once its issuers\' keys are loaded', async () => {
  const token = await idp.token('alice-app')
  const get = () => onNewConnection(`${gateway.url}/reports/daily`, { headers: { authorization: `Bearer ${token}` } })
  expect((await Promise.all(Array.from({ length: 10 }, get))).map((r) => r.status)).toEqual(Array(10).fill(200))

  hold = deferred<void>()
  await crashWorker(gateway.stderr, 'w2')
  await waitFor(() => heldFetches > 0, 'the replacement to ask for its keys', 30_000)
  // Before the fix the replacement listened right after; now not until its keys come. A bounded
  // wait for that line is the only way to see it (it never comes while the keys are held).
  await waitFor(() => listening('w2') === 2, 'the replacement to listen', 2_000).catch(() => {})
  const during = await Promise.all(Array.from({ length: 20 }, get))
  expect(during.map((r) => r.status)).toEqual(Array(20).fill(200)) // all on w1 (some 503 "still loading" before)
  expect(listening('w2')).toBe(1)

  hold.resolve()
  hold = null
  await waitFor(() => listening('w2') === 2, 'the replacement to listen once its keys loaded', 30_000)
  expect((await Promise.all(Array.from({ length: 10 }, get))).map((r) => r.status)).toEqual(Array(10).fill(200))
}, 120_000)
