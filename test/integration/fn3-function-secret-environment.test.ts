// Found by an adversarial probe: a function's `environment` could not take `${secret:NAME}` (check
// refused it: "may only stand in one of: an upstream's headers, …"), so a handler's credential had
// to come in the gateway's own environment, which every function can read (/proc/self/environ).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const [FIRST, SECOND] = ['reports-db-password-one-0123', 'reports-db-password-two-4567']
let files: string
let gw: TestGateway

beforeAll(async () => {
  files = await mkdtemp(join(tmpdir(), 'bouncer-fn3-secret-env-'))
  await writeFile(join(files, 'reports-db-password'), `${FIRST}\n`)
  gw = await startTestGateway({
    secrets: { store: { type: 'file', dir: files }, refresh_interval: '200ms' },
    functions: [{ name: 'echo', module: join(FIXTURES, 'echo.ts'), concurrency: 1, environment: { TABLE: 'reports', DB_URL: 'postgres://reader:${secret:reports-db-password}@db/reports' } }],
    routes: [{ id: 'echo', path: '/echo', function: 'echo', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
  if (files) await rm(files, { recursive: true, force: true })
})

async function handlerEnvironment(): Promise<Record<string, string>> {
  const res = await request(`${gw.url}/echo`)
  expect(res.statusCode).toBe(200)
  return ((await res.body.json()) as { env: Record<string, string> }).env
}

it("a function's environment takes ${secret:NAME}: the handler reads the value, and a rotated one from its next call on", async () => {
  expect(await handlerEnvironment()).toMatchObject({ TABLE: 'reports', DB_URL: `postgres://reader:${FIRST}@db/reports` })
  await writeFile(join(files, 'reports-db-password'), `${SECOND}\n`)
  let env: Record<string, string> = {}
  await waitFor(async () => (env = await handlerEnvironment()).DB_URL !== `postgres://reader:${FIRST}@db/reports`, 'the rotated value in the handler\'s environment')
  expect(env).toMatchObject({ TABLE: 'reports', DB_URL: `postgres://reader:${SECOND}@db/reports` })
  // Never in the gateway's log, as any secret.
  expect(gw.logs.join('')).not.toContain(FIRST)
  expect(gw.logs.join('')).not.toContain(SECOND)
})
