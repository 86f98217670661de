// Found by a probe: the credential values a secret rotation replaced are withheld from answers, as
// an upstream may still hold and echo them (ups2-rotated-credential-echo), but that list started
// empty again when a config reload changed the upstream's other settings (its targets are made
// anew): an echo of the value rotated out just before the reload reached the client. It is carried
// across a reload of an upstream whose header templates did not change.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { rotatedCredential } from '../helpers/rotated-credential.ts'
import { waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()
const OLD = 'old-token-3d9e21a0c4b7'
const NEW = 'new-token-a5c01f7e9d22'

describe('a credential rotated out, then a reload that changes the upstream', () => {
  it('an echo of the old value is still withheld', async () => {
    const { path, masterKey, store, upstream } = await rotatedCredential('fx4-rotated', OLD, closeLater)
    const config = (timeout: string) => ({
      secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '100ms' },
      upstreams: [{ name: 'api', url: upstream.url, timeout, headers: { Authorization: 'Bearer ${secret:api-token}' } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    const gw = await startTestGateway(config('10s'), { env: { BOUNCER_MASTER_KEY: masterKey } })
    closeLater(() => gw.close())
    const ask = async () => {
      const res = await request(`${gw.url}/x`)
      await res.body.dump()
      return res
    }
    expect((await ask()).statusCode).toBe(200)
    store.put('api-token', NEW)
    await waitFor(async () => (await ask()).statusCode === 401, 'the rotated token to be sent', 5_000)

    // Another timeout: the upstream is made anew, its headers' templates as they were.
    await gw.writeConfig(config('11s'))
    expect((await gw.reload()).ok).toBe(true)
    const after = await ask()
    expect(after.statusCode).toBe(401)
    expect(after.headers['x-ok']).toBe('fine')
    expect(after.headers['x-expected-authorization']).toBeUndefined()
    expect(JSON.stringify(after.headers)).not.toContain(OLD)
  })
})
