// A reload that fails with something other than a config error (here: the secrets store, locked by
// another process, could not take the new assertion key) after its config was compiled. What the
// compile opened for it — a new function's worker threads — was retired only when the failure was
// a config error; otherwise it stayed open, one more set at each retry of an edited config.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { threadsNamed } from '../helpers/threads.ts'
import { waitFor } from '../helpers/wait.ts'

const ECHO = fileURLToPath(new URL('../fixtures/functions/echo.ts', import.meta.url))
const masterKey = randomBytes(32)
const THREADS = 6
let dir: string
let upstream: TestUpstream
let gw: TestGateway

const config = (path: string, withFunction: boolean) => ({
  secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '1h' },
  // The assertion key is made at the first config that asks for it: the reload's, here.
  upstreams: [{ name: 'api', url: upstream.url, identity_assertion: withFunction }],
  functions: withFunction ? [{ name: 'echo', module: ECHO, concurrency: THREADS }] : [],
  routes: [
    { id: 'api', path: '/api/*', upstream: 'api', public: true },
    ...(withFunction ? [{ id: 'echo', path: '/echo', function: 'echo', public: true }] : []),
  ],
})

const echoThreads = () => threadsNamed('function echo')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-reload-retire-'))
  upstream = await startUpstream()
  gw = await startTestGateway(config(join(dir, 'secrets.db'), false), { env: { BOUNCER_MASTER_KEY: masterKey.toString('base64') } })
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('a reload that fails after its compile gives back what the compile opened', async () => {
  const path = join(dir, 'secrets.db')
  expect(echoThreads()).toBe(0)
  await gw.writeConfig(config(path, true))
  const holder = new DatabaseSync(path)
  holder.exec('BEGIN IMMEDIATE')
  try {
      const reload = gw.reload()
    // The compile starts them; the store refuses the key ~2 s later.
    await waitFor(() => echoThreads() === THREADS, `the function's ${THREADS} threads to start (${echoThreads()} now)`, 10_000)
    await expect(reload).rejects.toThrow(/the secrets store is locked/)
  } finally {
    holder.exec('ROLLBACK')
    holder.close()
  }
  // The function's worker threads, started by the compile, end with their pool.
  await waitFor(() => echoThreads() === 0, `the function's threads to end (${echoThreads()} left)`, 15_000)
  // The running config still serves.
  expect((await fetch(`${gw.url}/api/x`)).status).toBe(200)
}, 60_000)
