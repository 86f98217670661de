// Found by a probe: every error the audit worker logged (a sink away, a spill file or the checkpoint
// file that cannot be written, retention) lost its reason across the thread boundary: the log said
// "err":{"message":"[object Object]"}. What an operator reads when PostgreSQL is away.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { closedPort } from '../helpers/faults.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let gateway: ServeProcess | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-log-errors-'))
})

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

it('logs why an audit sink is unavailable, not [object Object]', async () => {
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [{ type: 'postgres', url: `postgres://postgres@127.0.0.1:${await closedPort()}/test`, schema: 'bouncer_log_errors' }], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  }))
  gateway = await startServe(['--config', file], { startTimeout: 60_000 })
  const logs = () => `${gateway!.stdout()}${gateway!.stderr()}`
  await waitFor(() => logs().includes('audit sink unavailable at start'), 'the log line', 30_000)
  const line = logs().split('\n').find((l) => l.includes('audit sink unavailable at start')) as string
  expect(JSON.parse(line).err).toMatchObject({ message: expect.stringContaining('ECONNREFUSED'), code: 'ECONNREFUSED' })
  expect(line).not.toContain('[object Object]')
}, 90_000)
