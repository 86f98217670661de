// Found by a probe (helper): with server.workers and durability: batched, a worker that ended
// without draining (what its heap limit does; here an exception no handler sees) took the records
// its audit log still held with it, and nothing counted them: bouncer_audit_dropped_total stayed 0.
// The primary now counts them, from a cell the worker's audit log keeps current.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { freshRequest } from '../helpers/fresh.ts'
import { crashWorker, UNHANDLED_CRASH } from '../helpers/inspector.ts'
import { auditRows } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitForText } from '../helpers/wait.ts'

let dir: string
let upstream: TestUpstream
let gateway: ServeProcess | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-audit-lost-'))
  upstream = await startUpstream((_req, res) => void res.end('ok'))
})

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

const dropped = async (adminUrl: string) => Number(/^bouncer_audit_dropped_total (\d+)$/m.exec(await (await request(`${adminUrl}/metrics`)).body.text())?.[1])

it('counts as dropped the records a worker held when it ended without draining', async () => {
  const file = join(dir, 'bouncer.yaml')
  const log = join(dir, 'audit.db')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0', workers: 2 },
    admin: { listen: '127.0.0.1:0', token: 'workers-audit-lost-admin-token-0123' },
    // Records wait in the request thread for 20 s: the crash comes first.
    audit: { sinks: [{ type: 'sqlite', path: log }], flush_interval: '20s', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }))
  gateway = await startServe(['--config', file], { nodeArgs: ['--inspect=127.0.0.1:0'], startTimeout: 90_000 })
  const SENT = 30 // on fresh connections: the kernel hashes each to either worker
  const answers = await Promise.all(Array.from({ length: SENT }, () => freshRequest(`${gateway!.url}/open`)))
  expect(answers.map((answer) => answer.status)).toEqual(Array(SENT).fill(200))
  expect(await dropped(gateway.adminUrl)).toBe(0)

  await crashWorker(gateway.stderr, 'w2', UNHANDLED_CRASH)
  await waitForText(gateway.stderr, /"worker":"w2".*audit records lost: the worker ended before its audit log wrote them/, 30_000)
  const lost = await dropped(gateway.adminUrl)
  expect(lost).toBeGreaterThan(0)
  // w1 drains at SIGTERM and writes what it held: every request is either in the log or counted.
  expect(await gateway.stop()).toBe(0)
  gateway = undefined
  expect(auditRows(log, `route = 'open'`).length + lost).toBe(SENT)
}, 120_000)
