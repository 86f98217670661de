// Found by an adversarial probe of the upstream side: a health check's `timeout` did not bound the
// making of its connection. undici's queue heeds no abort signal while a connection is being made,
// so against a target that answers no SYN (a host gone from the network) each check lasted the
// upstream's connect_timeout (5 s by default) whatever its own `timeout`: with checks of 300 ms
// every 500 ms and unhealthy_after 2, the target was taken out after 11.5 s, not about 1 s, and
// requests went on failing at it meanwhile. Now the checks' connection is made within the check's
// own `timeout`.
import { describe, expect, it } from 'vitest'
import { startBlackhole } from '../helpers/faults.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

describe('health checks of a target that answers no SYN', () => {
  it('take it out within a few rounds of the check\'s own `timeout`, not of connect_timeout', async () => {
    const hole = await startBlackhole()
    closeLater(async () => hole.close())
    const target = `http://127.0.0.1:${hole.port}`
    const started = performance.now()
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: target, connect_timeout: '5s', health_check: { path: '/health', interval: '500ms', timeout: '300ms', unhealthy_after: 2, healthy_after: 1 } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    await waitFor(async () => (await metricValue(gw.adminUrl, `bouncer_upstream_target_up{upstream="api",target="${target}"}`)) === 0, 'the target taken out', 20_000)
    // Two checks of 300 ms and an interval: about 1.1 s; before the fix two connect_timeouts, 11.5 s.
    expect(performance.now() - started).toBeLessThan(8_000)
  })
})
