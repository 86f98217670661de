// The credential values a secret rotation replaced are withheld from answers (ups2-rotated-credential-
// echo), and carried across a reload that makes the upstream anew (fx4-rotated-credential-reload).
// A reload refused after it had made the upstream anew (another timeout, then an admin token the
// store gives with white space) closed that new upstream, and with it the registry's note of which
// upstream of the name was the latest: the running one was no longer known, so the next reload that
// changed the upstream began its list empty, and an echo of the rotated-out value reached the client.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { rotatedCredential } from '../helpers/rotated-credential.ts'
import { waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()
const OLD = 'old-token-ups3-8b1e5c2d'
const NEW = 'new-token-ups3-4f7a90e1'

describe('a credential rotated out, a refused reload, then a reload that changes the upstream', () => {
  it('an echo of the old value is still withheld after each', async () => {
    const { path, masterKey, store, upstream } = await rotatedCredential('ups3-rotated', OLD, closeLater)
    store.put('bad-admin-token', 'has white space')
    const config = (timeout: string, admin: Record<string, unknown> = {}) => ({
      secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '100ms' },
      admin,
      upstreams: [{ name: 'api', url: upstream.url, timeout, headers: { Authorization: 'Bearer ${secret:api-token}' } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    const gw = await startTestGateway(config('10s'), { env: { BOUNCER_MASTER_KEY: masterKey } })
    closeLater(() => gw.close())
    const expectOldWithheld = async () => {
      const res = await request(`${gw.url}/x`)
      await res.body.dump()
      expect(res.statusCode).toBe(401)
      expect(res.headers['x-ok']).toBe('fine')
      expect(res.headers['x-expected-authorization']).toBeUndefined()
      expect(JSON.stringify(res.headers)).not.toContain(OLD)
    }
    const first = await request(`${gw.url}/x`)
    await first.body.dump()
    expect(first.statusCode).toBe(200)
    store.put('api-token', NEW)
    await waitFor(async () => {
      const res = await request(`${gw.url}/x`)
      await res.body.dump()
      return res.statusCode === 401
    }, 'the rotated token to be sent', 5_000)
    await expectOldWithheld()

    // Refused once the upstream was made anew (another timeout): the admin token can be presented by no one.
    await gw.writeConfig(config('11s', { token: '${secret:bad-admin-token}' }))
    const refused = await gw.reload()
    expect(refused.ok).toBe(false)
    await expectOldWithheld()

    // Then a reload that changes the upstream again, and is swapped in.
    await gw.writeConfig(config('12s'))
    expect((await gw.reload()).ok).toBe(true)
    await expectOldWithheld()
  })
})
