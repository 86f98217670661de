// The config's reload generation (POST /api/reload's answer, /readyz's `config` check, the console's
// "explained under generation N") counted compiles in each thread: a replay's draft (POST
// /api/replay, answered by the first worker) and a reload staged then aborted bumped one worker's
// count, and a replaced worker started again at 1. Under server.workers two workers running the
// same config then said different generations (`w1:config: generation 3`, `w2:config: generation
// 2`), the reload's answer was whichever worker's count, and after the first worker was replaced it
// went back. The generation is the gateway's: how many reloads it has taken, given by the
// primary to every worker (a replacement too), and not moved by a replay.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { serveConfig } from '../helpers/cli.ts'
import { crashWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN = 'workers-admin-generation-admin-0123'
let dir: string
let file: string
let upstream: TestUpstream
let gateway: ServeProcess
let single: (ServeProcess & { dir: string }) | undefined

function config(audit: string): Record<string, unknown> {
  return {
    admin: { listen: '127.0.0.1:0', token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: audit }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-admin-generation-'))
  upstream = await startUpstream()
  ;({ gateway, file } = await serveWithWorkers(dir, () => config(join(dir, 'audit.db')), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await single?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

async function admin(url: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${url}${path}`, {
    method, headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

/** Each worker's generation as /readyz says it (`w1:config: generation N, sha256 …`). */
async function generations(): Promise<Record<string, number>> {
  const { body } = await admin(gateway.adminUrl, 'GET', '/readyz')
  const out: Record<string, number> = {}
  for (const [name, value] of Object.entries((body.checks ?? {}) as Record<string, string>)) {
    const match = /^(w\d+):config$/.exec(name)
    const generation = /^generation (\d+),/.exec(value)
    if (match && generation) out[match[1] as string] = Number(generation[1])
  }
  return out
}

/** A replay of the running config's own text: it compiles a draft, and changes nothing. */
async function replayTheConfig(url: string, text: string): Promise<void> {
  const replay = await admin(url, 'POST', '/api/replay', { config: text, hours: 1 })
  expect(replay.status, JSON.stringify(replay.body)).toBe(200)
}

it('every worker says the one generation: a replay does not move it, a reload moves it on all, a replacement takes it', async () => {
  expect(await generations()).toEqual({ w1: 1, w2: 1 })
  const text = await readFile(file, 'utf8')
  await replayTheConfig(gateway.adminUrl, text)
  await replayTheConfig(gateway.adminUrl, text)
  // A replay decides recorded requests under a draft: the gateway's config did not change.
  expect(await generations()).toEqual({ w1: 1, w2: 1 })

  const reloaded = await admin(gateway.adminUrl, 'POST', '/api/reload')
  expect(reloaded.status).toBe(200)
  expect({ answer: reloaded.body.generation, workers: await generations() }).toEqual({ answer: 2, workers: { w1: 2, w2: 2 } })

  // The first worker (which answers the rest of /api/*) crashes: its replacement runs generation 2, not 1.
  await crashWorker(gateway.stderr, 'w1')
  await waitFor(async () => {
    const metrics = await (await request(`${gateway.adminUrl}/metrics`)).body.text()
    return metrics.includes('bouncer_worker_restarts_total 1') && metrics.includes('bouncer_workers{state="running"} 2')
  }, 'w1 replaced and running', 60_000)
  expect(await generations()).toEqual({ w1: 2, w2: 2 })
  const again = await admin(gateway.adminUrl, 'POST', '/api/reload')
  expect(again.body).toMatchObject({ ok: true, generation: 3 })
  expect(await generations()).toEqual({ w1: 3, w2: 3 })
}, 180_000)

it('one process: a replay does not count as a reload', async () => {
  single = await serveConfig((d) => ({ ...config(join(d, 'audit.db')), audit: { sinks: [{ type: 'sqlite', path: join(d, 'audit.db') }], flush_interval: '10ms' } }))
  const text = await readFile(join(single.dir, 'bouncer.yaml'), 'utf8')
  await replayTheConfig(single.adminUrl, text)
  const ready = await admin(single.adminUrl, 'GET', '/readyz')
  expect((ready.body.checks as Record<string, string>).config).toMatch(/^generation 1,/)
  const reloaded = await admin(single.adminUrl, 'POST', '/api/reload')
  expect(reloaded.body).toMatchObject({ ok: true, generation: 2 })
}, 60_000)
