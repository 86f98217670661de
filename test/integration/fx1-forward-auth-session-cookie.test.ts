// Found probing forward-auth (fixup1): where Bouncer forwards, it removes its sign-in session's
// cookies (bouncer_session, bouncer_session_state) from the Cookie header, since they are the
// gateway's credential, never the upstream's. Behind nginx or Caddy from docs/forward-auth.md's
// snippets, every request carried the person's session cookie on to the API: an application
// behind the proxy (or its request log) held a cookie it could replay at the gateway, as that person,
// on every other route. The snippets now remove them, the client's token's way.
import { request } from 'undici'
import { expect, it } from 'vitest'
import { behindEachProxy, forwardAuthSetup } from '../helpers/forward-auth-proxy.ts'

const setup = forwardAuthSetup('fx1-cookie')

behindEachProxy(['caddy', 'nginx'], setup, (proxy, available) => {
  it.runIf(available)('the session\'s cookies stop at the proxy, the application\'s own pass', async () => {
    const cookies: Array<[string, string | undefined]> = [
      ['a=1; bouncer_session=stolen; b=2; bouncer_session_state=s', 'a=1; b=2'],
      ['bouncer_session=stolen; b=2', 'b=2'],
      // The gateway's cookie reader trims a name: this one is the session cookie too.
      ['a=1; bouncer_session =stolen', 'a=1'],
      ['my_bouncer_session=1; bouncer_sessions=2', 'my_bouncer_session=1; bouncer_sessions=2'],
      // Nothing left: no Cookie header at all, not an empty one.
      ['bouncer_session=stolen; bouncer_session_state=s', undefined],
    ]
    for (const [sent, expected] of cookies) {
      const before = setup().api.received.length
      const res = await request(`${proxy().url}/health`, { headers: { cookie: sent } })
      await res.body.dump()
      expect(res.statusCode, sent).toBe(200)
      const reached = setup().api.received.slice(before)
      expect(reached, sent).toHaveLength(1)
      // As the application reads them: a proxy may leave a separator behind.
      const pairs = (cookie: unknown) => String(cookie ?? '').split(';').map((pair) => pair.trim()).filter((pair) => pair !== '')
      if (expected === undefined) expect(reached[0]!.headers, sent).not.toHaveProperty('cookie')
      else expect(pairs(reached[0]!.headers.cookie), sent).toEqual(pairs(expected))
    }
  })
})
