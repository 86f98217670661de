// Found by a probe: README says an upstream's `max_concurrent` is the ceiling on what reaches it
// from everyone together, but with server.workers: 2 each worker thread counted its own requests in
// flight, so `max_concurrent: 2` let 4 reach the upstream at once. The workers now count in one
// table the primary makes (src/upstream/in-flight.ts): the ceiling is the gateway's, a crashed
// worker's requests are given back, and a reload that changes the upstream keeps the count.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { crashWorker, UNHANDLED_CRASH } from '../helpers/inspector.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, metricValue, waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const ADMIN_TOKEN = 'workers-max-concurrent-admin-token-01'
/** Requests sent at once, each on a connection of its own: all on one worker has odds 2 in 1024. */
const SENT = 10

let dir: string
let upstream: TestUpstream
let gateway: ServeProcess
let file: string
/** Released to answer every request the upstream holds now. */
let hold = deferred()
/** The requests a test sent, held or answered: each test ends with none in flight. */
let sent: Promise<unknown>[] = []

function config(port: number, timeout = '30s') {
  return {
    server: { listen: `127.0.0.1:${port}`, workers: 2 },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    upstreams: [{ name: 'api', url: upstream.url, max_concurrent: 2, timeout }],
    routes: [{ id: 'held', path: '/held', upstream: 'api', public: true }],
  }
}

const reached = () => upstream.started.filter((url) => url === '/held').length

interface Answer { status: number; retryAfter: string | undefined; code: unknown }

/**
 * SENT requests at once; resolves once each has either reached the upstream (held there) or been
 * answered: what were answered, and how many more reached the upstream.
 */
async function sendAtOnce(): Promise<{ answered: Answer[]; reached: number }> {
  const before = reached()
  const answered: Answer[] = []
  const pending = Array.from({ length: SENT }, () => onNewConnection(`${gateway.url}/held`).then((res) => {
    answered.push({ status: res.status, retryAfter: res.headers['retry-after'] as string | undefined, code: res.status === 503 ? (JSON.parse(res.body) as { code?: unknown }).code : res.body })
  }, () => {}))
  sent.push(...pending)
  await waitFor(() => answered.length + reached() - before === SENT, 'every request answered or at the upstream', 30_000)
  return { answered, reached: reached() - before }
}

const saturated = { status: 503, retryAfter: '1', code: 'upstream_saturated' }

beforeAll(async () => {
  upstream = await startUpstream(async (_req, res) => {
    await hold.promise
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-max-concurrent-'))
  ;({ gateway, file } = await serveWithWorkers(dir, (port) => config(port), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  hold.resolve()
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

// Answers what the upstream holds, and waits until every request sent has its answer.
afterEach(async () => {
  hold.resolve()
  await Promise.all(sent)
  sent = []
  hold = deferred()
})

it('max_concurrent: 2 with two workers: 2 requests reach the upstream, the rest 503 upstream_saturated with Retry-After', async () => {
  const { answered, reached } = await sendAtOnce()
  expect(reached).toBe(2)
  expect(answered).toEqual(Array(SENT - 2).fill(saturated))
}, 60_000)

it('workers that crash holding requests give their places back: the ceiling is whole again, not smaller', async () => {
  const { reached: first } = await sendAtOnce()
  expect(first).toBe(2)
  // Both workers, one after the other, so whichever holds the two requests ends without finishing
  // them (no handler sees the exception: no drain).
  for (const [i, id] of ['w1', 'w2'].entries()) {
    await crashWorker(gateway.stderr, id, UNHANDLED_CRASH)
    await waitFor(async () => (await metricValue(gateway.adminUrl, 'bouncer_worker_restarts_total')) === i + 1, `${id}'s replacement counted`, 30_000)
    await waitFor(async () => (await (await fetch(`${gateway.adminUrl}/metrics`)).text()).includes('bouncer_workers{state="running"} 2'), 'both workers running again', 30_000)
  }
  hold.resolve() // what reached the upstream before the crashes is answered to no one
  hold = deferred()

  const { answered, reached } = await sendAtOnce()
  expect(reached).toBe(2)
  expect(answered).toEqual(Array(SENT - 2).fill(saturated))
  expect(gateway.stderr()).toContain('the worker stopped with upstream requests in flight: their places under max_concurrent are given back')
}, 120_000)

it('a reload that changes the upstream keeps its requests in flight counted', async () => {
  const { reached: first } = await sendAtOnce()
  expect(first).toBe(2)
  // Another timeout: a new upstream in every worker, which once started again from 0 in flight.
  const port = Number(new URL(gateway.url).port)
  await writeFile(file, stringify({ ...config(port, '29s'), audit: { sinks: [], spill_dir: join(dir, 'spill') } }))
  const reload = await fetch(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(reload.status).toBe(200)

  const { answered, reached } = await sendAtOnce()
  expect(reached).toBe(0)
  expect(answered).toEqual(Array(SENT).fill(saturated))
}, 60_000)
