// Found by a probe (helper): with server.workers, a reload that changed limits_store.max_keys was
// ignored. The workers' shared table was sized at start and its bound with it: raised from 100 to
// 1,000, every new caller still got 503 limits_unavailable ("the limits store is full"); lowered
// from 1,000 to 100, it went on taking new keys. With one worker the reload applied.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const TOKEN = 'limits-workers-max-keys-admin-token-0123'
let upstream: TestUpstream
let gateway: ServeProcess
let dir: string
let file: string
let config: Record<string, unknown>

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  dir = await mkdtemp(join(tmpdir(), 'limits-workers-max-keys-'))
  ;({ gateway, file } = await serveWithWorkers(dir, () => (config = {
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    upstreams: [{ name: 'api', url: upstream.url }],
    // A daily quota: every key stays live for the whole test (a minute's could decay meanwhile).
    limits: [{ name: 'daily', key: 'header:X-Client', quota: '5/d' }],
    limits_store: { type: 'memory', max_keys: 100 },
    routes: [{ id: 'q', path: '/q', upstream: 'api', public: true, limits: ['daily'] }],
  })))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

/** One request per client, each on a connection of its own (the kernel spreads them over both workers). */
async function callers(prefix: string, count: number) {
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => onNewConnection(`${gateway.url}/q`, { headers: { 'x-client': `${prefix}-${i}` } })))
  return answers.map((a) => (a.status === 503 ? (JSON.parse(a.body) as { code: string }).code : a.status))
}

function tally(answers: Array<number | string>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const a of answers) out[a] = (out[a] ?? 0) + 1
  return out
}

async function reloadWith(maxKeys: number): Promise<void> {
  await writeFile(file, stringify({ ...config, server: { listen: new URL(gateway.url).host, workers: 2 }, audit: { sinks: [], spill_dir: join(dir, 'spill') }, limits_store: { type: 'memory', max_keys: maxKeys } }))
  const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  expect({ status: res.statusCode, body: await res.body.json() }).toMatchObject({ status: 200, body: { ok: true } })
}

async function limitsStoreChecks(): Promise<string[]> {
  const ready = (await (await request(`${gateway.adminUrl}/readyz`)).body.json()) as { checks: Record<string, string> }
  return Object.entries(ready.checks).filter(([name]) => name.endsWith('limits_store')).map(([, value]) => value)
}

describe('server.workers: 2, a reload that changes limits_store.max_keys', () => {
  it('applies to both workers: a higher one admits new keys, a lower one bounds them, and no quota is reset', async () => {
    expect(tally(await callers('first', 130))).toEqual({ 200: 100, limits_unavailable: 30 })

    await reloadWith(1_000)
    expect(tally(await callers('second', 130))).toEqual({ 200: 130 })
    // This store has refused nothing; 230 keys are live.
    expect(await limitsStoreChecks()).toEqual(['memory (shared by the workers): 230 keys', 'memory (shared by the workers): 230 keys'])

    await reloadWith(100)
    // 230 live keys, 100 allowed: a new caller waits, a known one keeps its budget (4 of 5 left).
    expect(tally(await callers('third', 10))).toEqual({ limits_unavailable: 10 })
    const known = await onNewConnection(`${gateway.url}/q`, { headers: { 'x-client': 'second-7' } })
    expect({ status: known.status, ratelimit: known.headers.ratelimit }).toEqual({ status: 200, ratelimit: expect.stringMatching(/^"daily";r=3;t=\d+$/) })
  }, 120_000)
})
