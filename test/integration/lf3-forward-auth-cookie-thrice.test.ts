// Found by the limits and forward-auth probe (lf3): docs/forward-auth.md's nginx snippet removed the
// sign-in session's cookies with two chained maps, each removing one: a Cookie header carrying them
// three times (a browser holding the cookie for two domains or paths besides the state cookie, or a
// client that repeats it) passed the third on to the API — the gateway's credential, which an
// application behind the proxy (or its request log) could replay at the gateway as that person.
// Caddy's snippet replaces every match and was right; both are held to any number here.
import { request } from 'undici'
import { expect, it } from 'vitest'
import { behindEachProxy, forwardAuthSetup } from '../helpers/forward-auth-proxy.ts'

const setup = forwardAuthSetup('lf3-cookie')

behindEachProxy(['nginx', 'caddy'], setup, (proxy, available) => {
  it.runIf(available)('no session cookie reaches the API, however many times the Cookie header carries it', async () => {
    const sent = [
      'bouncer_session=one; bouncer_session=two; bouncer_session=three',
      'a=1; bouncer_session=one; b=2; bouncer_session_state=s; bouncer_session=three; c=3',
      `a=1; ${Array.from({ length: 12 }, (_, i) => `bouncer_session=s${i}`).join('; ')}; z=9`,
      'bouncer_session_state=s; bouncer_session = one;bouncer_session=two;  bouncer_session_state=t',
    ]
    for (const cookie of sent) {
      const before = setup().api.received.length
      const res = await request(`${proxy().url}/health`, { headers: { cookie } })
      await res.body.dump()
      expect(res.statusCode, cookie).toBe(200)
      const reached = setup().api.received.slice(before)
      expect(reached, cookie).toHaveLength(1)
      const names = String(reached[0]!.headers.cookie ?? '').split(';').map((pair) => pair.split('=')[0]!.trim()).filter((name) => name !== '')
      expect(names.filter((name) => name.startsWith('bouncer_session')), cookie).toEqual([])
    }
  })

  it.runIf(available)('the application\'s own cookies still pass beside the usual two', async () => {
    const before = setup().api.received.length
    const res = await request(`${proxy().url}/health`, { headers: { cookie: 'a=1; bouncer_session=x; b=2; bouncer_session_state=s; c=3' } })
    await res.body.dump()
    const pairs = String(setup().api.received[before]?.headers.cookie ?? '').split(';').map((pair) => pair.trim()).filter((pair) => pair !== '')
    expect(pairs).toEqual(['a=1', 'b=2', 'c=3'])
  })
})
