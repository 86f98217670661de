// Found by an adversarial probe: a credential that expired while its upstream's answer was awaited
// (an event stream whose head came after the token's exp) closed the stream from inside the open
// tunnels' registry's add, before the stream held its way out: the stream ended, but its entry
// stayed in the registry for good (its request context, the revocation sweep's timer).
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { credentialExpiredNote } from '../../src/upstream/index.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: TestUpstream
let gw: TestGateway
let idp: TestIdentityProvider
let db: string
let exp = 0

beforeAll(async () => {
  idp = await startIdentityProvider()
  // The event stream's head comes only once the caller's token has expired.
  upstream = await startUpstream((req, res) => {
    const answer = () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const timer = setInterval(() => res.write('data: tick\n\n'), 100)
      req.socket.once('close', () => clearInterval(timer))
    }
    void waitFor(() => Date.now() > exp * 1000 + 100, 'the token to expire').then(answer)
  })
  gw = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], clock_tolerance: '0s' }],
      roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp', subject: 'feed-reader' }], policies: ['feed'] }],
      policies: [{ name: 'feed', statements: [{ sid: 'Feed', effect: 'allow', actions: ['GET'], routes: ['events'] }] }],
      upstreams: [{ name: 'feed', url: upstream.url }],
      routes: [{ id: 'events', path: '/events', upstream: 'feed' }],
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    }
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

it('a stream whose credential expired before its answer came ends, and leaves the open tunnels\' registry', async () => {
  exp = Math.floor(Date.now() / 1000) + 1
  const token = await idp.mint({ sub: 'feed-reader', aud: AUDIENCE, exp })
  const response = await fetch(`${gw.url}/events`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'sse-expired-at-open' } })
  expect(response.status).toBe(200)
  await response.text()
  const record = await waitForAuditRecord(db, 'sse-expired-at-open')
  expect({ status: record.status, detail: record.detail }).toEqual({ status: 200, detail: credentialExpiredNote(exp, 0, 'the event stream') })
  // Before: 1, for good.
  expect(gw.state.openTunnels.size).toBe(0)
}, 20_000)
