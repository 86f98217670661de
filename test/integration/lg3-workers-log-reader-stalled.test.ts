// Under server.workers, the worker threads wrote their log lines to stderr synchronously (only the
// primary's were queued, adm3-log-reader-stalled): once a reader of stderr stopped reading and the
// pipe filled, the next line a worker logged held that worker's event loop until it was read, and
// every request the kernel gave that worker waited with it. Workers' lines now go through the
// primary's queue (bounded; past it they are dropped and counted in bouncer_log_lines_dropped_total).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN = 'lg3-workers-log-stall-admin-token-0123456789'
let dir: string
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-lg3-workers-log-stall-'))
  ;({ gateway } = await serveWithWorkers(dir, () => ({ admin: { listen: '127.0.0.1:0', token: ADMIN }, routes: [] })))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

/** The status, or 'no answer' after 3 s; on a connection of its own, so the kernel picks a worker for each. */
async function answer(url: string, init: RequestInit = {}): Promise<number | 'no answer'> {
  const headers = { connection: 'close', ...(init.headers as Record<string, string> | undefined) }
  return fetch(url, { ...init, headers, signal: AbortSignal.timeout(3_000) }).then(async (res) => (await res.arrayBuffer(), res.status), () => 'no answer' as const)
}

it('a reader of stderr that stops reading stops no worker', async () => {
  await waitForText(gateway.stderr, /"worker listening"[\s\S]*"worker listening"/)
  gateway.child.stderr?.pause() // nobody reads its stderr from here on
  // Each admin call that changes something is logged by the worker that answers it (a line of some
  // 1.1 KB here): 660 KB, well over what the pipe (a socket pair's buffers) holds.
  const logged = `${gateway.adminUrl}/api/${'x'.repeat(1_000)}`
  for (let i = 0; i < 600; i++) {
    expect(await answer(logged, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } }), `admin call ${i}`).toBe(404)
  }
  // Every worker still answers (no route: 404 from whichever worker the connection reached).
  for (let i = 0; i < 20; i++) expect(await answer(`${gateway.url}/nothing-here`), `request ${i}`).toBe(404)
  expect(await answer(`${gateway.adminUrl}/healthz`)).toBe(200)
  // None was lost: once stderr is read again, every worker's line is written, each whole.
  gateway.child.stderr?.resume()
  const calls = () => gateway.stderr().split('\n').filter((line) => line.includes('"admin API call"'))
  await waitFor(() => calls().length === 600, 'the 600 admin call lines')
  for (const line of calls()) expect(JSON.parse(line)).toMatchObject({ level: 'info', worker: expect.stringMatching(/^w[12]$/), method: 'POST', status: 404 })
}, 60_000)
