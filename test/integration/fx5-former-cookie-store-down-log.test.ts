// A sign-out (or sign-in) with a session cookie under a former name ends its session and clears the
// cookie; when the session store fails while ending it, the gateway logs which cookie it was. That
// line named the cookie in a field `cookie`, which the logger redacts (a Cookie header's value is a
// credential): the operator read `"cookie":"[redacted]"`, never the cookie's name. Now the field is
// `cookie_name`. A real provider; the shared Redis behind a relay that stalls.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar } from '../helpers/cookie-jar.ts'
import { heldPort, startFreezingRelay, type FreezingRelay } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { analystsMayGet, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let relay: FreezingRelay
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  relay = await startFreezingRelay(6379)
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { afterSignOut: '/' })
  gateway = await startSignInGateway({
    ...signInConfig(idp, {
      cookie: { name: 'app_session', previous_names: ['fx5_old_session'] },
      session: { store: { type: 'redis', url: `redis://127.0.0.1:${relay.port}`, prefix: uniquePrefix('fx5-former-cookie'), timeout: '300ms' } },
    }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }, { port: held })
}, 60_000)

afterAll(async () => {
  relay?.thaw()
  await closeAll(gateway, upstream, idp)
  relay?.close()
})

it('names the former cookie whose session the failing store could not end', { timeout: 30_000 }, async () => {
  const client = cookieJar()
  const logged = gateway.logs.length
  relay.freeze()
  let out
  try {
    out = await client.request(`${gateway.url}/.bouncer/sign_out`, { method: 'POST', headers: { origin: gateway.url, cookie: `fx5_old_session=${'A'.repeat(43)}` }, html: false })
  } finally {
    relay.thaw()
  }
  expect(out.status, out.body).toBe(302)
  expect([out.headers['set-cookie']].flat().join('\n')).toMatch(/^fx5_old_session=; Path=\/; Max-Age=0;/m)
  const line = () => gateway.logs.slice(logged).join('').split('\n').find((text) => text.includes('a cookie under a former name was not ended'))
  await waitFor(() => line() !== undefined, 'the line saying the former cookie\'s session was not ended')
  expect(JSON.parse(line() as string)).toMatchObject({ cookie_name: 'fx5_old_session' })
})
