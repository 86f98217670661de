// A start that fails after its config was compiled (here: the admin tokens, read from the secrets
// store, are the same value, which only the store's values can show) gives back what the compile
// opened. It did not: a function's worker threads kept running, and `bouncer serve` printed
// "refusing to start" and never exited, so a supervisor's restart on failure never came.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { threadsNamed } from '../helpers/threads.ts'
import { ConfigError } from '../../src/instance/index.ts'

const ECHO = fileURLToPath(new URL('../fixtures/functions/echo.ts', import.meta.url))
const env = { START_FAILED_SECRET_ADMIN_TOKEN: 'admin-token-0123456789', START_FAILED_SECRET_READ_TOKEN: 'admin-token-0123456789' }
const config = {
  admin: { token: '${secret:admin-token}', read_token: '${secret:read-token}' },
  secrets: { store: { type: 'env', prefix: 'START_FAILED_SECRET_' } },
  functions: [{ name: 'gone', module: ECHO, concurrency: 4 }],
  routes: [{ id: 'gone', path: '/gone', function: 'gone', public: true }],
}
let dir: string

const functionThreads = () => threadsNamed('function gone')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-start-failed-'))
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('a start refused after the compile leaves no function thread running', async () => {
  const refused = await startTestGateway(config, { env }).then(() => null, (err: unknown) => err)
  expect(refused).toBeInstanceOf(ConfigError)
  expect(functionThreads()).toBe(0)
})

it('bouncer serve refused after the compile exits, with the reason', async () => {
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({ ...config, audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') } }))
  const { code, stderr } = await runCli(['serve', '--config', file, '--port', '0', '--admin-port', '0'], { env, timeout: 15_000 })
  expect({ code, stderr }).toMatchObject({ code: 1, stderr: expect.stringMatching(/admin\.read_token has the same value as admin\.token once their secrets are read[\s\S]*refusing to start/) })
}, 30_000)
