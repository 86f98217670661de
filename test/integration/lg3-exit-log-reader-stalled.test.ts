// Log lines queue in memory while a reader of stderr has stopped reading (adm3-log-reader-stalled),
// and pino writes what is queued when the process exits, synchronously, retrying while the pipe is
// full: SIGTERM drained the gateway and then the exit waited for ever, until the reader read again (a
// stalled log shipper held `bouncer serve` past every stop; a supervisor saw no exit, only its own
// SIGKILL). The exit now tries for a bounded time, then ends without the lines that do not fit.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { BIN } from '../helpers/cli.ts'

const ADMIN = 'lg3-exit-log-stall-admin-token-0123456789'
let dir: string
let child: ChildProcess | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-lg3-exit-log-stall-'))
})

afterAll(async () => {
  child?.kill('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

it('SIGTERM ends a gateway whose stderr nobody reads', async () => {
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({ server: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0', token: ADMIN }, audit: { sinks: [], spill_dir: join(dir, 'spill') }, routes: [] }))
  const started = spawn(process.execPath, [BIN, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  child = started
  const exited = once(started, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  let out = ''
  started.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const admin = await new Promise<string>((resolve, reject) => {
    started.stdout.on('data', () => {
      const found = /admin listening on (\S+)/.exec(out)
      if (found) resolve(found[1] as string)
    })
    void exited.then(([code]) => reject(new Error(`bouncer serve exited (${code})`)))
  })
  started.stderr.pause() // nobody reads its stderr from here on
  // Each admin call that changes something is logged (some 1.1 KB a line): well over what the pipe holds.
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${admin}/api/${'x'.repeat(1_000)}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })
    await res.arrayBuffer()
  }
  started.kill('SIGTERM')
  const ended = await Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 15_000).unref())])
  expect(ended).toEqual([0, null])
}, 60_000)
