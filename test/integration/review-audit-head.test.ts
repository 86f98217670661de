// Found by review: GET /api/audit/head under server.workers names a worker that gives no head
// (`workers_unanswered`), so that a verifier comparing heads knows one is missing. It asked only
// the running workers: one restarting after a crash (its chain took records all the same, and its
// replacement continues it) was left out of `workers` without a word, the very gap the field closes.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { AuditHead } from '../../src/audit/index.ts'
import type { ServeProcess } from '../helpers/cli.ts'
import { crashWorker, holdNextWorker } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const ADMIN = 'review-audit-head-admin-token-0123'
let dir: string
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-review-audit-head-'))
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    admin: { listen: '127.0.0.1:0', token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }],
  }), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

async function auditHead(): Promise<{ status: number; body: AuditHead }> {
  const answer = await request(`${gateway.adminUrl}/api/audit/head`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return { status: answer.statusCode, body: (await answer.body.json()) as AuditHead }
}

it('names a worker that is restarting after a crash, not only one that did not answer in time', async () => {
  // Both workers' chains have records.
  await waitFor(async () => {
    await Promise.all(Array.from({ length: 6 }, () => onNewConnection(`${gateway.url}/open/x`)))
    const { body } = await auditHead()
    return body.workers?.length === 2 && body.workers.every((w) => w.head.count > 0)
  }, 'both workers to have chained records', 30_000)

  const replacement = await holdNextWorker(gateway.stderr, 'w2')
  await crashWorker(gateway.stderr, 'w2')
  await replacement.started // w2's replacement is held before it runs: w2 gives no head now
  try {
    const { status, body } = await auditHead()
    expect(status).toBe(200)
    expect(body.workers?.map((w) => w.worker)).toEqual(['w1'])
    expect(body.workers_unanswered).toEqual([{ worker: 'w2', why: expect.stringMatching(/^worker w2 is starting/) }])
  } finally {
    replacement.release()
  }
}, 120_000)
