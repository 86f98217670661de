// BOUNCER_LOG_LEVEL as operators write it: `DEBUG` (as LOG_LEVEL is for most programs) made `bouncer
// serve` refuse to start with "internal error: default level:DEBUG must be included in custom
// levels", pino's words, blaming the gateway; `verbose` alike (found by the admin probe). Read in any
// letter case now, and a level that is none is the user's error, saying which levels there are.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { runCli, serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { waitForText } from '../helpers/wait.ts'

let dir: string
let serve: (ServeProcess & { dir: string }) | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-adm3-log-level-'))
})

afterEach(async () => {
  await serve?.stop()
  serve = undefined
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

// The audit worker says it is ready at debug level.
const config = (at: string) => ({ audit: { sinks: [{ type: 'sqlite', path: join(at, 'audit.db') }], spill_dir: join(at, 'spill') }, routes: [] })

it('BOUNCER_LOG_LEVEL=DEBUG is debug', async () => {
  serve = await serveConfig((at) => config(at), { env: { BOUNCER_LOG_LEVEL: 'DEBUG' } })
  await waitForText(() => serve?.stderr() ?? '', 'audit worker ready')
})

it('a BOUNCER_LOG_LEVEL that is no level refuses the start as the user\'s error, naming the levels', async () => {
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({ ...config(dir), server: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' } }))
  const result = await runCli(['serve', '--config', file], { env: { BOUNCER_LOG_LEVEL: 'verbose' } })
  expect(result.code).toBe(1)
  expect(result.stderr.trim()).toBe('bouncer: BOUNCER_LOG_LEVEL "verbose" is not a log level: fatal, error, warn, info, debug, trace or silent')
})
