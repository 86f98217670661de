// The loop check (ups2-forwarding-loop) counted every Via entry that named Bouncer: a client that
// sent `Via: 1.1 bouncer` eight times had its own request refused, 502 upstream_error "a forwarding
// loop", recorded as the upstream's error (decision "error"), never forwarded. Only entries this
// gateway wrote count: its own carry a token of the process (every worker's) in their comment,
// which a client never sees; a client's look-alikes, with or without a comment, pass on as Via does.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { metricValue } from '../helpers/wait.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

describe('a client that forges Bouncer entries in its Via', () => {
  it('is forwarded, and its request is no upstream error', async () => {
    const echo = await startUpstream()
    closeLater(() => echo.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'echo', url: echo.url }],
      routes: [{ id: 'echo', path: '/*', upstream: 'echo', public: true }],
    })
    closeLater(() => gw.close())

    // What the gateway adds to a request: its entry, with the token a client cannot know.
    const first = await request(`${gw.url}/a`)
    const own = ((await first.body.json()) as { headers: Record<string, string> }).headers.via as string
    expect(own).toMatch(/^1\.1 bouncer \([A-Za-z0-9_-]+\)$/)
    // The answer's entry carries no token: the client learns nothing to forge with.
    expect(first.headers.via).toBe('1.1 bouncer')

    const forged = [
      Array(8).fill('1.1 bouncer').join(', '),
      Array(8).fill('1.1 bouncer (a-guess)').join(', '),
      Array(10).fill('2 Bouncer').join(','),
    ]
    for (const via of forged) {
      const res = await request(`${gw.url}/b`, { headers: { via } })
      const seen = (await res.body.json()) as { headers: Record<string, string> }
      expect(res.statusCode).toBe(200)
      expect(seen.headers.via).toBe(`${via}, ${own}`)
    }
    const errors = (await metricValue(gw.adminUrl, 'bouncer_requests_total{route="echo",status="502",decision="error"}')) ?? 0
    expect(errors).toBe(0)
  })
})
