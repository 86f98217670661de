// Found by the sessions probe: signing out while the provider does not answer (a blackholed
// network, a provider stuck behind its load balancer) held the person's sign-out for the provider
// client's whole 10 s timeout, every time: the RP-initiated logout's end_session_endpoint comes
// from discovery, which a gateway that has not signed anyone in since it started has not made yet,
// and a failed one is not kept. The session had already ended in the store; only the answer
// waited. The refresh token's revocation was already not waited for, for this very reason; now
// the end_session_endpoint is waited for a short while only, then the browser goes to
// after_sign_out_path (the log says RP-initiated logout was skipped). A stand-in for the provider
// on its port that accepts connections and never answers.
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionId } from '../../src/identity/index.ts'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let hanging: Server
const held: ServerResponse[] = []

beforeAll(async () => {
  upstream = await startUpstream()
  const port = await heldPort()
  idp = await startSignInProvider(port.port, { people: [ALICE], afterSignOut: '/' })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: 'memory' } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }, { port })
  // The provider goes silent: its port still accepts, nothing answers.
  await idp.stop()
  hanging = createServer((_req, res) => void held.push(res))
  hanging.listen(idp.port, '127.0.0.1')
  await once(hanging, 'listening')
}, 60_000)

afterAll(() => closeAll(gateway, upstream, async () => {
  for (const res of held) res.destroy()
  hanging?.closeAllConnections()
  hanging?.close()
}))

describe('signing out while the provider does not answer', { timeout: 30_000 }, () => {
  it('ends the session and answers within a few seconds, to after_sign_out_path', async () => {
    // A session signed in before (the store's record, as a sign-in writes it).
    const value = randomBytes(32).toString('base64url')
    const now = Date.now()
    await gateway.state.runtime.signIn!.store.put({
      id: sessionId(value), issuer: 'sso', subject: 'alice', claims: { sub: 'alice', iss: idp.issuer, groups: ['analysts'] },
      createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
    })
    const client = cookieJar()
    client.setCookie(gateway.url, 'bouncer_session', value)
    expect((await client.request(`${gateway.url}/people/report`, { html: false })).status).toBe(200)

    const from = gateway.logs.length
    const started = performance.now()
    const out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url } })
    const took = performance.now() - started
    expect(out.status, out.body).toBe(302)
    expect(out.location).toBe(`${gateway.url}/`)
    expect(took).toBeLessThan(5_000)
    expect(held.length).toBeGreaterThan(0) // it did ask the provider
    await waitFor(() => gateway.logs.slice(from).some((line) => line.includes('RP-initiated logout skipped')), 'the log of the skipped logout', 5_000)
    // The session is over.
    expect((await client.request(`${gateway.url}/people/report`, { html: false })).status).toBe(401)
  })
})
