// GET /api/catalog under server.workers asks every worker (each fetches its issuers' key sets). A
// worker busy in a long synchronous task answered nothing: the primary waited 10 s for it, then
// merged the other worker's catalog alone, so the issuer read "ready" and the worker was missing
// from `workers`, while /readyz said within 2 s that the gateway was not ready (a probe: 10,080 ms,
// `workers: ["w1:ready"]`). The catalog now waits 5 s at most and lists a worker that did not
// answer, its issuers unavailable on it and why. GET /api/audit/head waited 10 s likewise and left
// the silent worker's chain out unnamed: it too waits 5 s and names it (workers_unanswered).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Catalog } from '../../src/admin/index.ts'
import type { AuditHead } from '../../src/audit/index.ts'
import type { ServeProcess } from '../helpers/cli.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { inspectWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN = 'workers-admin-catalog-unanswered-0123'
/** How long the test holds the second worker's thread. */
const HOLD_MS = 12_000
let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-catalog-unanswered-'))
  ;[idp, upstream] = await Promise.all([startIdentityProvider(), startUpstream()])
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    admin: { listen: '127.0.0.1:0', token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reader', assumed_by: [{ issuer: 'corp' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  }), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function catalog(): Promise<{ ms: number; status: number; body: Catalog }> {
  const started = Date.now()
  const answer = await request(`${gateway.adminUrl}/api/catalog`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return { status: answer.statusCode, body: (await answer.body.json()) as Catalog, ms: Date.now() - started }
}

async function auditHead(): Promise<{ ms: number; status: number; body: AuditHead }> {
  const started = Date.now()
  const answer = await request(`${gateway.adminUrl}/api/audit/head`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return { status: answer.statusCode, body: (await answer.body.json()) as AuditHead, ms: Date.now() - started }
}

const states = (body: Catalog) => body.issuers[0]?.workers?.map((w) => `${w.worker}: ${w.state}`)

it('lists a worker that does not answer, its issuers unavailable on it, within the bound', async () => {
  await waitFor(async () => JSON.stringify(states((await catalog()).body)) === JSON.stringify(['w1: ready', 'w2: ready']), 'both workers to hold the keys', 30_000)

  // The second worker's thread held in a synchronous loop (a long task, a runaway handler).
  const w2 = await inspectWorker(gateway.stderr, 'w2')
  try {
    w2.evaluate(`{ const until = Date.now() + ${HOLD_MS}; while (Date.now() < until) {} }`)
    await waitFor(async () => {
      const ready = await request(`${gateway.adminUrl}/readyz`)
      const body = (await ready.body.json()) as { checks: Record<string, string> }
      return ready.statusCode === 503 && /^not ready: no answer within \d+ ms$/.test(body.checks.w2 ?? '')
    }, '/readyz to say w2 does not answer', 10_000)

    // Asked together: the audit head, too, waits 5 s at most and names the silent worker.
    const [held, head] = await Promise.all([catalog(), auditHead()])
    expect(head.status).toBe(200)
    expect(head.ms).toBeLessThan(8_000)
    expect(head.body.workers?.map((w) => w.worker)).toEqual(['w1'])
    expect(head.body.workers_unanswered).toEqual([{ worker: 'w2', why: expect.stringMatching(/^worker w2 did not answer within 5 s/) }])
    expect(held.status).toBe(200)
    expect(held.ms).toBeLessThan(8_000)
    const [issuer] = held.body.issuers
    expect({ state: issuer?.state, workers: states(held.body) }).toEqual({ state: 'unavailable', workers: ['w1: ready', 'w2: unavailable'] })
    expect(issuer?.last_error).toMatch(/^worker w2 did not answer within 5 s/)
    expect(issuer?.workers?.find((w) => w.worker === 'w1')).toMatchObject({ last_error: null, keys: expect.any(Number) })
  } finally {
    w2.close()
  }

  // Once it answers again, so does the catalog.
  await waitFor(async () => JSON.stringify(states((await catalog()).body)) === JSON.stringify(['w1: ready', 'w2: ready']), 'w2 back in the catalog', 30_000)
  expect((await catalog()).body.issuers[0]?.state).toBe('ready')
}, 120_000)
