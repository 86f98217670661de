// Found by an operations probe: `bouncer secrets put` decoded stdin chunk by chunk, so a character
// split between two 64 KB reads (a long value from a file: `< value.txt`) was stored as two U+FFFD,
// and bytes that are not UTF-8 (a binary key piped in) were replaced the same way, silently: the
// store held a value the operator never gave. Now the value is decoded whole, and non-UTF-8 refused.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { openSync, closeSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { BIN, runCli, type CliResult } from '../helpers/cli.ts'

let dir: string
let config: string
const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64') }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secrets-stdin-'))
  config = join(dir, 'bouncer.yaml')
  await writeFile(config, stringify({
    audit: { sinks: [] },
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' } },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  }))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** `bouncer ARGS < file`: stdin is the file itself, read in 64 KB chunks as a shell's redirect gives it. */
async function withStdinFrom(bytes: Buffer, args: string[]): Promise<CliResult> {
  const file = join(dir, `stdin-${randomBytes(4).toString('hex')}`)
  await writeFile(file, bytes)
  const fd = openSync(file, 'r')
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: [fd, 'pipe', 'pipe'] })
  closeSync(fd)
  // Whole, as the value is: a chunk decoded alone splits a character too.
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout?.on('data', (d: Buffer) => stdout.push(d))
  child.stderr?.on('data', (d: Buffer) => stderr.push(d))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() }
}

it('stores a character that straddles two reads of stdin as it was given', async () => {
  const value = `${'a'.repeat(65_535)}é-ü`
  const put = await withStdinFrom(Buffer.from(value), ['secrets', 'put', 'long', '--config', config])
  expect(put.stderr).toMatch(/^warning: this change is NOT AUDITED: [^\n]+\n$/) // audit.sinks: []
  expect(put.code).toBe(0)
  const got = await withStdinFrom(Buffer.alloc(0), ['secrets', 'get', 'long', '--reveal', '--config', config])
  expect(got.stdout).toBe(`${value}\n`)
})

it('refuses a value that is not UTF-8, rather than storing replacement characters', async () => {
  const put = await withStdinFrom(Buffer.from([0xff, 0xfe, 0x00, 0x62]), ['secrets', 'put', 'binary', '--config', config])
  expect(put.code).toBe(1)
  expect(put.stderr).toBe('bouncer: the value on stdin is not UTF-8 text: give a binary value encoded, e.g. base64\n')
  const list = await runCli(['secrets', 'list', '--config', config], { env })
  expect(list.stdout).not.toContain('binary')
})
