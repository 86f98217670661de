// The gateway writes its log lines to stderr synchronously: when whatever reads stderr stops reading
// (a log shipper stalled, `bouncer serve 2>&1 | less` paused, a container runtime's blocking log
// driver), the first 64 KB of lines filled the pipe and the next write held the event loop until it
// was read. Every request stopped, /healthz included (found by the admin probe: 268 logged admin calls).
// Lines now queue in memory (bounded: past it they are dropped, not waited for) and the gateway serves on.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { BIN } from '../helpers/cli.ts'

const ADMIN = 'adm3-log-stall-admin-token-0123456789'
let dir: string
let child: ChildProcess | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-adm3-log-stall-'))
})

afterAll(async () => {
  child?.kill('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

/** The status, or 'no answer' after 3 s. */
async function answer(url: string, init: RequestInit = {}): Promise<number | 'no answer'> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(3_000) }).then(async (res) => (await res.arrayBuffer(), res.status), () => 'no answer' as const)
}

it('a reader of stderr that stops reading does not stop the gateway', async () => {
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({ server: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0', token: ADMIN }, audit: { sinks: [], spill_dir: join(dir, 'spill') }, routes: [] }))
  const started = spawn(process.execPath, [BIN, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  child = started
  let out = ''
  started.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  const admin = await new Promise<string>((resolve, reject) => {
    started.stdout?.on('data', () => {
      const found = /admin listening on (\S+)/.exec(out)
      if (found) resolve(found[1] as string)
    })
    started.once('exit', (code) => reject(new Error(`bouncer serve exited (${code})`)))
  })
  // Nobody reads its stderr from here on.
  started.stderr?.pause()
  // Each admin call that changes something (here a POST to nothing) is logged: well over a pipe's 64 KB.
  const logged = `${admin}/api/${'x'.repeat(1_000)}`
  for (let i = 0; i < 600; i++) {
    expect(await answer(logged, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } }), `call ${i}`).toBe(404)
  }
  expect(await answer(`${admin}/healthz`)).toBe(200)
}, 30_000)
