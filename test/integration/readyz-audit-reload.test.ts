// A changed audit section takes effect at the next restart; /readyz counted the sinks of the
// running config against the audit log's, so a reload that added a sink answered ok with that
// warning and then held the instance out of rotation (503) until a restart — every instance
// reloaded from one shared file at once: an outage.
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { readyz, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: TestUpstream
let gw: TestGateway

const config = (dir: string, sinks: number) => ({
  audit: { sinks: Array.from({ length: sinks }, (_, i) => ({ type: 'sqlite', path: join(dir, `audit-${i}.db`) })), spill_dir: join(dir, 'spill') },
  upstreams: [{ name: 'api', url: upstream.url }],
  routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
})

let dir: string
beforeAll(async () => {
  upstream = await startUpstream()
  gw = await startTestGateway((own) => {
    dir = own
    return config(own, 1)
  })
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

it('a reload that adds an audit sink (in force at the next restart) leaves the instance ready', async () => {
  await waitFor(async () => (await readyz(gw)).status === 200, 'ready at start')
  await gw.writeConfig(config(dir, 2))
  const reloaded = await gw.reload()
  expect(reloaded).toMatchObject({ ok: true, warnings: [expect.stringContaining('a changed audit section takes effect at the next restart')] })
  expect(await readyz(gw)).toMatchObject({ status: 200, checks: { [`audit:sqlite:${join(dir, 'audit-0.db')}`]: 'writing' } })
})
