// Found by a probe (helper): one process spills to audit.spill_dir itself, and with server.workers
// each worker spills to spill_dir/wN. A restart with another number of workers left the records
// spilled in the old layout where no audit worker read them: never replayed into the sink, and
// `audit verify` reported the log truncated. The process now adopts such files at start, and its
// (first worker's) audit worker replays them.
import { readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { freshRequest } from '../helpers/fresh.ts'
import { auditRows } from '../helpers/mcp.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let upstream: TestUpstream
const started: ServeProcess[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-spill-workers-'))
  upstream = await startUpstream((_req, res) => void res.end('ok'))
})

afterAll(async () => {
  await Promise.all(started.map((gateway) => gateway.stop('SIGKILL')))
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

/** Records waiting in the spill files under `spill`, whatever their layout. */
function spilledLines(spill: string): number {
  return readdirSync(spill, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ndjson'))
    .reduce((sum, file) => sum + readFileSync(join(spill, file), 'utf8').split('\n').filter((line) => line.trim() !== '').length, 0)
}

async function serve(file: string): Promise<ServeProcess> {
  const gateway = await startServe(['--config', file], { startTimeout: 90_000 })
  started.push(gateway)
  return gateway
}

async function spillThenRestart(name: string, before: number, after: number): Promise<void> {
  const base = join(dir, name)
  await mkdir(base)
  // A file where the log's folder should be: the sink cannot open, and records spill.
  const blocked = join(base, 'blocked')
  await writeFile(blocked, '')
  const log = join(blocked, 'audit.db')
  const config = (workers: number) => ({
    server: { listen: '127.0.0.1:0', workers },
    admin: { listen: '127.0.0.1:0', token: 'spill-workers-admin-token-0123456789' },
    audit: { sinks: [{ type: 'sqlite', path: log }], spill_dir: join(base, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: ['first', 'second'].map((id) => ({ id, path: `/${id}`, upstream: 'api', public: true })),
  })
  const file = join(base, 'bouncer.yaml')
  await writeFile(file, stringify(config(before)))

  const first = await serve(file)
  const answers = await Promise.all(Array.from({ length: 20 }, () => freshRequest(`${first.url}/first`)))
  expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200))
  expect(await first.stop()).toBe(0) // the drain spills what is queued
  expect(spilledLines(join(base, 'spill'))).toBe(20)

  await unlink(blocked) // the sink can open now
  await writeFile(file, stringify(config(after)))
  const second = await serve(file)
  expect((await freshRequest(`${second.url}/second`)).status).toBe(200)
  await waitFor(() => auditRows(log, `route = 'first'`).length === 20, 'the first run\'s spilled records in the log', 30_000)
  await waitFor(() => spilledLines(join(base, 'spill')) === 0, 'the spill files drained', 30_000)
  expect(await second.stop()).toBe(0)
  const verify = await runCliInProcess(['audit', 'verify', '--config', file])
  expect(verify.code, verify.stdout + verify.stderr).toBe(0)
}

it('replays what two workers spilled once the gateway runs as one process', async () => {
  await spillThenRestart('two-to-one', 2, 1)
}, 180_000)

it('replays what one process spilled once the gateway runs two workers', async () => {
  await spillThenRestart('one-to-two', 1, 2)
}, 180_000)
