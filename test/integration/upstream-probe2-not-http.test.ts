// A target that answers with something that is not HTTP: a port that a redeploy gave to another
// service (an SSH daemon's banner, a database's greeting), or an upstream whose answer head is
// malformed. undici's parser refuses it (HPE_*), and nothing of an answer ever began. A probe: each
// such try was 502 "failed mid-exchange", but counted as no failure of the target, so `eject`
// never took it out and `retries` on `reset` never sent a GET on to the healthy target: with two
// targets, every other request failed for good, bouncer_upstream_target_failures_total said 0, and
// the client's detail named nothing to look for.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

/** A service that is not HTTP, as sshd answers an HTTP request: its banner, a complaint, a close. */
async function sshLike(): Promise<RawUpstream> {
  const up = await startRawUpstream((_head, socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\nInvalid SSH identification string.\r\n'))
  closeLater(() => up.close())
  return up
}

async function gatewayFor(upstream: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startTestGateway({ upstreams: [{ name: 'api', ...upstream }], routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }] })
  closeLater(() => gw.close())
  return gw
}

describe('a target that answers with something that is not HTTP', () => {
  it('is a failure of the target: a GET goes on to the healthy one (retries on reset), and eject takes it out', async () => {
    const bad = await sshLike()
    const good = await startUpstream()
    closeLater(() => good.close())
    const gw = await gatewayFor({ targets: [bad.url, good.url], eject: { after: 2, for: '30s' }, retries: { attempts: 2, on: ['connect_failure', 'reset'] } })
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) {
      const res = await request(`${gw.url}/read/${i}`)
      await res.body.dump()
      statuses.push(res.statusCode)
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200])
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_ejections_total{upstream="api",target="${bad.url}"}`)).toBe(1)
    // Asked twice (two failures in a row), then out of rotation.
    expect(bad.heads).toHaveLength(2)
  })

  it('the client is told what came back, not "failed mid-exchange"', async () => {
    const bad = await sshLike()
    const gw = await gatewayFor({ url: bad.url })
    const res = await request(`${gw.url}/x`)
    const body = (await res.body.json()) as { code: string; detail: string }
    expect({ status: res.statusCode, code: body.code }).toEqual({ status: 502, code: 'upstream_error' })
    expect(body.detail).toMatch(/^Upstream "api" answered with something that is not HTTP\/1\.1 \(Expected HTTP\/, RTSP\/ or ICE\/\)\.$/)
  })

  it('a POST it received is still not sent to another target (it may have acted on it): the client gets the 502', async () => {
    const bad = await sshLike()
    const good = await startUpstream()
    closeLater(() => good.close())
    const gw = await gatewayFor({ targets: [bad.url, good.url], retries: { attempts: 2, on: ['connect_failure', 'reset'] } })
    const res = await request(`${gw.url}/write`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' })
    await res.body.dump()
    expect({ status: res.statusCode, atGood: good.received.length }).toEqual({ status: 502, atGood: 0 })
  })
})
