// server.workers: 2 and a SIGTERM while both workers are held in a synchronous read (their reload's
// master key on a hung file system; a named pipe here, pipe-feeder.ts): terminate() cannot stop a
// thread inside a system call, so the drain waited for their exit for ever. Now the process ends
// (SIGKILL, with a warning) once the hard stop has had its grace, and what was served before is in
// the audit log.
import { randomBytes } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { freshRequest } from '../helpers/fresh.ts'
import { endPipeFedTest, startPipeFeeder, type PipeFeeder } from '../helpers/pipe-feeder.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'workers-shutdown-held-admin-token'
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` }
const MASTER_KEY = randomBytes(32).toString('base64')

let dir: string
let feeder: PipeFeeder
let upstream: TestUpstream
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-held-'))
  feeder = startPipeFeeder(dir, 'master-key', MASTER_KEY)
  upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
  })
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0', workers: 2, shutdown_timeout: '1s' },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: `file:${feeder.path}` } },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }))
  gateway = await startServe(['--config', file], { startTimeout: 90_000 })
}, 120_000)

afterAll(() => endPipeFedTest({ gateway, feeder, upstream, dir }))

it('workers held in a read do not hold the process: it ends after the hard stop, the served requests audited', async () => {
  const served = await Promise.all(Array.from({ length: 12 }, () => freshRequest(`${gateway.url}/open`)))
  expect(served.every((answer) => answer.status === 200)).toBe(true)
  await waitFor(async () => ((await (await request(`${gateway.adminUrl}/api/audit?route=open&limit=100`, { headers: AUTH })).body.json()) as unknown[]).length === 12, 'the 12 records')

  // Every read of the key from now on waits for ever (two workers that open at once may share a pipe: both are held either way).
  const never = new Promise<void>(() => {})
  feeder.plan = [{ content: MASTER_KEY, gate: never }, { content: MASTER_KEY, gate: never }]
  const readers = feeder.readers
  request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: AUTH }).catch(() => {}) // cut off by the exit
  await waitFor(() => feeder.readers > readers, 'a worker reading its master key')
  gateway.child.kill('SIGTERM')
  await waitForText(gateway.stderr, '"msg":"draining"')

  // Before, it never ended. shutdown_timeout (1 s) + the hard stop's margin (5 s) + its grace (1 s).
  expect(await gateway.exited).toBeNull()
  expect(gateway.child.signalCode).toBe('SIGKILL')
  expect(gateway.stderr()).toContain('a worker thread held in a system call did not end with the drain')
  const db = new DatabaseSync(join(dir, 'audit.db'), { readOnly: true })
  expect(db.prepare("SELECT count(*) AS n FROM audit_records WHERE route = 'open'").get()).toEqual({ n: 12 })
  db.close()
}, 60_000)
