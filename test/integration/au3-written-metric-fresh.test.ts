// bouncer_audit_written_total (and the other audit counters) came from the audit worker's stats,
// sent once a second: with durability: sync a response waits for its record's commit, yet a scrape
// right after it still counted 0 records written for up to a second (alerts and tests read stale
// counts). A commit now carries the worker's counters with it.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, publicCatchAll, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/wait.ts'

let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => {
    res.end('ok')
  })
  gw = await startTestGateway((dir) => ({
    ...publicCatchAll(upstream.url),
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), durability: 'sync' },
  }))
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

describe('bouncer_audit_written_total under durability: sync', () => {
  it('counts a record as soon as its answer is complete', async () => {
    for (let i = 1; i <= 3; i++) {
      const res = await request(`${gw.url}/r/${i}`)
      expect(res.statusCode).toBe(200)
      await res.body.text()
      expect(await metricValue(gw.adminUrl, 'bouncer_audit_written_total')).toBe(i)
    }
  })
})
