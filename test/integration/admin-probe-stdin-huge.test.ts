// `bouncer secrets put NAME < big-file` (a wrong file, /dev/zero, a log): stdin was read whole,
// however large, before anything was checked. 1.5 GB took 2 GB of memory and then was refused as
// "not UTF-8 text" (the string was past V8's longest, the bytes were fine); a few MB were stored as a
// secret (found by the operator probe). A value is a token, a password or a key: past 1 MiB, stdin
// is refused as too large, and reading stops there.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { BIN, runCli } from '../helpers/cli.ts'

let dir: string
let config: string
const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64') }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-stdin-huge-'))
  config = join(dir, 'bouncer.yaml')
  await writeFile(config, stringify({ audit: { sinks: [] }, secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' } } }))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('a value of 1 MiB is stored; one past it is refused as too large, and nothing is stored', { timeout: 30_000 }, async () => {
  const fits = await runCli(['secrets', 'put', 'fits', '--config', config], { input: 'k'.repeat(1024 * 1024), env })
  expect(fits.code, fits.stderr).toBe(0)
  const over = await runCli(['secrets', 'put', 'too-big', '--config', config], { input: 'k'.repeat(1024 * 1024 + 1), env })
  expect(over).toMatchObject({ code: 1, stdout: '', stderr: 'bouncer: the value on stdin is over 1 MiB: a secret is a token, a password or a key\n' })
  expect((await runCli(['secrets', 'versions', 'too-big', '--config', config], { env })).stderr).toContain('no secret too-big')
})

it('stdin that does not end (/dev/zero) is refused once past the bound, not read until memory runs out', { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, [BIN, 'secrets', 'put', 'endless', '--config', config], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const stderr: Buffer[] = []
  child.stderr.on('data', (d: Buffer) => stderr.push(d))
  child.stdin.on('error', () => {}) // the command stops reading: the writes after are refused
  const chunk = Buffer.alloc(64 * 1024)
  let closed = false
  child.once('close', () => (closed = true))
  // Fed without end, as /dev/zero would (a pipe the test can stop writing to, unlike the device).
  const feed = async () => {
    while (!closed && !child.stdin.destroyed) await new Promise((written) => child.stdin.write(chunk, written))
  }
  void feed()
  // Without the bound it would read until memory ran out: stopped here, and the test fails.
  const stop = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const [code] = (await once(child, 'close')) as [number | null]
  clearTimeout(stop)
  expect(code).toBe(1)
  expect(Buffer.concat(stderr).toString()).toBe('bouncer: the value on stdin is over 1 MiB: a secret is a token, a password or a key\n')
})
