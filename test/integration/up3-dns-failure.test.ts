// A target whose host name does not resolve: no connection was made, so nothing of the request was
// sent. Only ENOTFOUND and EAI_AGAIN were known as connect failures; any other failure of the name
// lookup (EAI_FAIL: a name server that refuses; EINVAL: a name longer than DNS allows) was 502
// upstream_error "failed mid-exchange", no failure of the target (never ejected, 0 on
// bouncer_upstream_target_failures_total), and a POST was not sent on to the next target, which
// retries on connect_failure allows. The name here fails in the resolver itself (over 253
// characters: libuv refuses it), so no name server is asked.
import { join } from 'node:path'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/wait.ts'

const closeLater = closeAfterEach()
const UNRESOLVABLE = `http://${`${'a'.repeat(60)}.`.repeat(5)}invalid:8080`

describe('an upstream target whose host name does not resolve', () => {
  it('is a connect failure: 502 upstream_unavailable saying so, counted, ejected, and a POST goes on to the next target', async () => {
    const good = await startUpstream()
    closeLater(() => good.close())
    let db = ''
    const gw = await startTestGateway((dir) => ({
      upstreams: [
        { name: 'lone', url: UNRESOLVABLE },
        { name: 'pair', targets: [UNRESOLVABLE, good.url], balance: 'round_robin', eject: { after: 1, for: '30s' }, retries: { attempts: 2, on: ['connect_failure'] } },
      ],
      routes: [
        { id: 'lone', path: '/lone/*', upstream: 'lone', public: true },
        { id: 'pair', path: '/pair/*', upstream: 'pair', public: true },
      ],
      audit: { sinks: [{ type: 'sqlite', path: (db = join(dir, 'audit.db')) }] },
    }))
    closeLater(() => gw.close())

    const res = await request(`${gw.url}/lone/x`, { headers: { 'x-request-id': 'unresolvable' } })
    const body = (await res.body.json()) as Record<string, unknown>
    expect(res.statusCode).toBe(502)
    expect(body).toMatchObject({ code: 'upstream_unavailable', detail: 'Upstream "lone" is unavailable: its host name could not be resolved (EINVAL).' })
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_failures_total{upstream="lone",target="${UNRESOLVABLE}"}`)).toBe(1)
    expect(await waitForAuditRecord(db, 'unresolvable')).toMatchObject({ status: 502, code: 'upstream_unavailable', upstream: 'lone' })

    // Round robin: the first request's turn is the unresolvable target's.
    const posted = await request(`${gw.url}/pair/orders`, { method: 'POST', body: 'order=1' })
    expect(posted.statusCode).toBe(200)
    expect(((await posted.body.json()) as { method: string }).method).toBe('POST')
    expect(await metricValue(gw.adminUrl, `bouncer_upstream_target_ejections_total{upstream="pair",target="${UNRESOLVABLE}"}`)).toBe(1)
  })
})
