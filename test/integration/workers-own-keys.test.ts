// Found by a probe: with server.workers: 2 and no secrets store, each worker made its own token
// exchange key and its own identity assertion key. A token exchanged on one worker was refused on
// the other (401 key_not_found, 48 of 100 uses on fresh connections), and each worker's JWKS listed
// only its own keys, so an upstream could not verify the other's assertions. The process now keeps
// the keys it makes in one store its workers share (src/secrets/shared-memory.ts).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { ISSUER, tokenForm } from '../helpers/exchange.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { onNewConnection as newConnection, serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-keys-'))
  idp = await startIdentityProvider({
    tokenTtlSeconds: 3600,
    clients: [
      { clientId: 'alice-app', secret: 'alice-app-secret-0123456789abcdef' },
      { clientId: 'reports-agent', secret: 'reports-agent-secret-0123456789ab' },
    ],
  })
  upstream = await startUpstream()
  const corp = (subject: string) => ({ issuer: 'corp', subject })
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'analyst', assumed_by: [corp('alice-app')], policies: ['analysts'] },
      { name: 'agent', assumed_by: [corp('reports-agent')], policies: ['analysts'] },
    ],
    policies: [{ name: 'analysts', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'data-api', url: upstream.url, identity_assertion: true }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'data-api' }],
    token_exchange: { issuer: ISSUER, audiences: [ISSUER], lifetime: '10m', actors: [{ role: 'agent', delegated_roles: ['analyst'] }] },
  })))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

const onNewConnection = (path: string, options: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string } = {}) => newConnection(`${gateway.url}${path}`, options)

const kidsOf = (jwks: string) => (JSON.parse(jwks) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort()

describe('server.workers: the keys the gateway makes are every worker\'s', () => {
  it('a token exchanged on one worker is honoured on every worker, and both publish the same keys', async () => {
    const [alice, agent] = await Promise.all([idp.token('alice-app'), idp.token('reports-agent')])
    const outcomes: string[] = []
    const kids = new Set<string>()
    for (let exchange = 0; exchange < 5; exchange++) {
      const exchanged = await onNewConnection('/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: tokenForm({ subject: alice, actor: agent }) })
      expect(exchanged.status).toBe(200)
      const token = (JSON.parse(exchanged.body) as { access_token: string }).access_token
      kids.add(decodeProtectedHeader(token).kid as string)
      for (let use = 0; use < 6; use++) {
        const used = await onNewConnection(`/reports/${exchange}-${use}`, { headers: { authorization: `Bearer ${token}` } })
        outcomes.push(used.status === 200 ? '200' : `${used.status} ${used.body}`)
      }
    }
    // Before the fix about half of these were 401 key_not_found.
    expect(outcomes).toEqual(Array(30).fill('200'))
    expect(kids.size).toBe(1)

    const exchangeJwks = new Set<string>()
    const assertionJwks = new Set<string>()
    for (let i = 0; i < 8; i++) {
      exchangeJwks.add(JSON.stringify(kidsOf((await onNewConnection('/oauth2/jwks')).body)))
      assertionJwks.add(JSON.stringify(kidsOf((await onNewConnection('/.well-known/jwks.json')).body)))
    }
    expect([...exchangeJwks]).toEqual([JSON.stringify([...kids])])
    expect(assertionJwks.size).toBe(1)
    // Every assertion the upstream received, whichever worker signed it, names a published key.
    const published = JSON.parse([...assertionJwks][0] as string) as string[]
    const signedWith = new Set(upstream.received.map((r) => decodeProtectedHeader(r.headers['x-bouncer-assertion'] as string).kid as string))
    expect(upstream.received.length).toBeGreaterThanOrEqual(30)
    expect([...signedWith]).toEqual(published)
  }, 90_000)
})
