// Found by a probe (server.workers x the host): the primary reaches each worker's admin API on a Unix
// socket it makes under the temporary directory (TMPDIR). A socket's path holds 107 bytes on Linux;
// with a TMPDIR long enough to push `<TMPDIR>/bouncer-workers-XXXXXX/w1.sock` past that (a CI
// runner's or a service's own deep directory), `bouncer serve` with workers did not start at all:
// "bouncer: internal error: listen EINVAL: invalid argument …/w1.sock", while one process started.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let longTmp: string
let upstream: TestUpstream
let gateway: ServeProcess | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-probe-tmpdir-'))
  // 100 bytes and more: with `/bouncer-workers-XXXXXX/w1.sock` after it, past a socket path's 107.
  longTmp = join(dir, 'a-temporary-directory-whose-path-is-long'.repeat(2))
  expect(Buffer.byteLength(longTmp)).toBeGreaterThan(100)
  await mkdir(longTmp, { recursive: true })
  upstream = await startUpstream()
}, 30_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

it('starts with two workers under a TMPDIR too long for a socket path, and its admin listener speaks for both', async () => {
  const started = await serveWithWorkers(dir, () => ({
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }), { env: { TMPDIR: longTmp } })
  gateway = started.gateway
  for (let i = 0; i < 4; i++) expect((await onNewConnection(`${gateway.url}/open`)).status).toBe(200)
  const ready = await request(`${gateway.adminUrl}/readyz`)
  const body = (await ready.body.json()) as { status: string; checks: Record<string, string> }
  expect(ready.statusCode).toBe(200)
  expect(body.checks).toMatchObject({ w1: 'ready', w2: 'ready', workers: '2 of 2 running' })
}, 120_000)
