// An injected credential rotated in the secrets store (${secret:…}): rotations overlap, so the
// rotated-out value is still good at the upstream for a while, and an upstream that still holds it
// (its own debug header, a WWW-Authenticate naming the token it expected, an answer to a request
// sent before the rotation) may echo it. The gateway withheld only the current value: the old one
// reached the client. The values of the rotation before are withheld too.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { rotatedCredential } from '../helpers/rotated-credential.ts'
import { waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()
const OLD = 'old-token-5f1c9a7e0b3d'
const NEW = 'new-token-77a1c0de42f9'

describe('an upstream that echoes an injected credential rotated out', () => {
  it('the header holding the old value is withheld, as one holding the new', async () => {
    const { path, masterKey, store, upstream } = await rotatedCredential('ups2-rotated', OLD, closeLater, (sent) => ({ 'x-sent': sent.slice(0, 16) }))
    const gw = await startTestGateway({
      secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '100ms' },
      upstreams: [{ name: 'api', url: upstream.url, headers: { Authorization: 'Bearer ${secret:api-token}' } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    }, { env: { BOUNCER_MASTER_KEY: masterKey } })
    closeLater(() => gw.close())
    const ask = async () => {
      const res = await request(`${gw.url}/x`)
      await res.body.dump()
      return res
    }

    const before = await ask()
    expect(before.statusCode).toBe(200)
    expect(before.headers['x-expected-authorization']).toBeUndefined()

    store.put('api-token', NEW)
    await waitFor(async () => (await ask()).statusCode === 401, 'the rotated token to be sent', 5_000)
    const after = await ask()
    expect(after.statusCode).toBe(401)
    expect(after.headers['x-ok']).toBe('fine')
    expect(after.headers['x-expected-authorization']).toBeUndefined()
    const all = JSON.stringify(after.headers)
    expect(all).not.toContain(OLD)
    expect(all).not.toContain(NEW)
  })
})
