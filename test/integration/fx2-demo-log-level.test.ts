// `bouncer demo` with a BOUNCER_LOG_LEVEL that names no level said "internal error" (pino's words
// through the gateway's start), where `bouncer serve` says it is the user's to fix and lists the
// levels. The demo now refuses the same way, before it writes its data directory or listens.
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'

let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-fx2-demo-level-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('a BOUNCER_LOG_LEVEL that is no level is the user\'s error for bouncer demo, naming the levels', async () => {
  const result = await runCli(['demo', '--port', '0', '--admin-port', '0', '--idp-port', '0', '--no-tour', '--data-dir', join(dir, 'data')], { env: { BOUNCER_LOG_LEVEL: 'verbose' }, cwd: dir, timeout: 8_000 })
  expect(result.stderr.trim()).toBe('bouncer: BOUNCER_LOG_LEVEL "verbose" is not a log level: fatal, error, warn, info, debug, trace or silent')
  expect(result.code).toBe(1)
  expect(await readdir(dir)).toEqual([]) // refused before it wrote anything
})
