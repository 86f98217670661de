// Found by an adversarial probe (helper): after a reload that changes audit.sinks (which takes effect at the next restart), the admin API searched and verified the new config's sink while records still went to the old one.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'audit-reload-admin-token-0123456789'
let dir: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-reload-admin-'))
  upstream = await startUpstream(async (_req, res) => { res.end('ok') })
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

const configWith = (path: string) => ({
  admin: { token: ADMIN },
  audit: { sinks: [{ type: 'sqlite', path }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
  upstreams: [{ name: 'api', url: upstream.url }],
  routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }],
})

describe('a reload that changes the audit sink', () => {
  it('GET /api/audit and POST /api/audit/verify keep reading the log the gateway still writes', async () => {
    const written = join(dir, 'audit.db')
    const gw = await startTestGateway(configWith(written))
    try {
      for (let i = 0; i < 3; i++) await (await request(`${gw.url}/open/${i}`)).body.dump()
      await waitFor(async () => (await searchAudit({ type: 'sqlite', path: written }, { limit: 10 }).catch(() => [])).length === 3, 'records')
      await gw.writeConfig(configWith(join(dir, 'elsewhere.db')))
      const reloaded = await gw.reload()
      expect(reloaded).toMatchObject({ ok: true, warnings: ['a changed audit section takes effect at the next restart'] })
      for (let i = 3; i < 5; i++) await (await request(`${gw.url}/open/${i}`)).body.dump()
      // The sink change takes effect at the next restart: records still go to the first log.
      await waitFor(async () => (await searchAudit({ type: 'sqlite', path: written }, { limit: 10 }).catch(() => [])).length === 5, 'records after reload')
      const auth = { authorization: `Bearer ${ADMIN}` }
      const res = await request(`${gw.adminUrl}/api/audit?limit=100`, { headers: auth })
      const body = (await res.body.json()) as unknown[]
      const verify = await request(`${gw.adminUrl}/api/audit/verify`, { method: 'POST', headers: auth })
      const verified = (await verify.body.json()) as { checked: number }
      expect({ search: body.length, verified: verified.checked }).toEqual({ search: 5, verified: 5 })
      // Every reload says so until the restart, not the first alone (a probe); the sink the
      // process started with, written back, waits for nothing.
      expect(await gw.reload()).toMatchObject({ ok: true, warnings: ['a changed audit section takes effect at the next restart'] })
      await gw.writeConfig(configWith(written))
      expect(await gw.reload()).toMatchObject({ ok: true, warnings: [] })
    } finally {
      await gw.close()
    }
  })
})
