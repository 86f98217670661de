// Found by an adversarial probe (helper): a reload that changed limits_store.max_keys made a new, empty memory store and closed the old one, so every spent quota and rate got a fresh budget — and the gateway's own log advises raising max_keys.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { describe, expect, it } from 'vitest'
import { startServe } from '../helpers/cli.ts'
import { freshRequest } from '../helpers/fresh.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { closeAfterEach, upstreamForFile } from '../helpers/lifecycle.ts'

const upstream = upstreamForFile((_req, res) => void res.end('ok'))
const closeLater = closeAfterEach()

const LIMITS = [{ name: 'daily', key: 'header:X-Client', quota: '2/d' }, { name: 'pace', key: 'header:X-Client', rate: '1/h', burst: 3 }]

function configWith(maxKeys: number, routes: object[] = []): Record<string, unknown> {
  return {
    upstreams: [{ name: 'api', url: upstream().url }],
    limits: LIMITS,
    limits_store: { type: 'memory', max_keys: maxKeys },
    routes: [{ id: 'q', path: '/q', upstream: 'api', public: true, limits: ['daily'] }, { id: 'r', path: '/r', upstream: 'api', public: true, limits: ['pace'] }, ...routes],
  }
}

async function hit(gw: TestGateway, path: string, client: string) {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-client': client } })
  await res.body.text()
  return { status: res.statusCode, ratelimit: res.headers.ratelimit }
}

describe('a reload that changes limits_store.max_keys (memory store)', () => {
  it.each([[1_000, 2_000], [1_000, 100]])('max_keys %i -> %i: a spent daily quota stays spent and a rate keeps its count', async (from, to) => {
    const gw = await startTestGateway(configWith(from))
    closeLater(() => gw.close())
    expect([(await hit(gw, '/q', 'spender')).status, (await hit(gw, '/q', 'spender')).status, (await hit(gw, '/q', 'spender')).status]).toEqual([200, 200, 429])
    expect((await hit(gw, '/r', 'spender')).ratelimit).toBe('"pace";r=2;t=3600')
    // The operator follows the "store full: raise limits_store.max_keys" advice (or lowers it).
    await gw.writeConfig(configWith(to))
    expect((await gw.reload()).ok).toBe(true)
    expect(await hit(gw, '/q', 'spender')).toMatchObject({ status: 429, ratelimit: expect.stringMatching(/^"daily";r=0;t=\d+$/) })
    expect(await hit(gw, '/r', 'spender')).toMatchObject({ status: 200, ratelimit: expect.stringMatching(/^"pace";r=1;t=(7199|7200)$/) })
    // A new caller has its own budget under the new size.
    expect(await hit(gw, '/q', 'newcomer')).toMatchObject({ status: 200, ratelimit: expect.stringMatching(/^"daily";r=1;/) })
  })

  it('a second reload keeps them too, and a reload that changes only a route does as before', async () => {
    const gw = await startTestGateway(configWith(1_000))
    closeLater(() => gw.close())
    for (let i = 0; i < 2; i++) expect((await hit(gw, '/q', 'spender')).status).toBe(200)
    for (const next of [configWith(5_000), configWith(500), configWith(500, [{ id: 'other', path: '/other', upstream: 'api', public: true }])]) {
      await gw.writeConfig(next)
      expect((await gw.reload()).ok).toBe(true)
      expect((await hit(gw, '/q', 'spender')).status).toBe(429)
    }
  })
})

describe('the same reload with server.workers: 2 (the shared table)', () => {
  it('keeps every quota: the table the workers share outlives a reload', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'limits-reload-max-keys-'))
    closeLater(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'bouncer.yaml')
    const token = 'limits-reload-max-keys-admin-token-0123'
    const write = (maxKeys: number) => writeFile(file, stringify({
      ...configWith(maxKeys),
      server: { listen: '127.0.0.1:0', workers: 2 },
      admin: { listen: '127.0.0.1:0', token },
      audit: { sinks: [], spill_dir: join(dir, 'spill') },
      limits: [{ name: 'daily', key: 'ip', quota: '20/d' }],
      routes: [{ id: 'q', path: '/q', upstream: 'api', public: true, limits: ['daily'] }],
    }))
    await write(1_000)
    const serve = await startServe(['--config', file], { startTimeout: 90_000 })
    closeLater(async () => void (await serve.stop('SIGKILL')))
    // Connections of their own: the kernel spreads them over both workers.
    const spend = await Promise.all(Array.from({ length: 25 }, () => freshRequest(`${serve.url}/q`)))
    expect(spend.filter((r) => r.status === 200)).toHaveLength(20)
    await write(2_000)
    const reloaded = await request(`${serve.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    expect(reloaded.statusCode).toBe(200)
    await reloaded.body.text()
    const after = await Promise.all(Array.from({ length: 10 }, () => freshRequest(`${serve.url}/q`)))
    expect(after.map((r) => r.status)).toEqual(Array(10).fill(429))
  }, 120_000)
})
