// `bouncer sessions list` on a Redis session store that took the connection and never answered (a
// Redis behind a proxy whose backend went, a black-holed address) waited for ioredis's 30 s
// backstop (the config probe's left item). Each of the list's commands now has the store's timeout.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startFreezingRelay, type FreezingRelay } from '../helpers/faults.ts'
import { uniquePrefix } from '../helpers/redis.ts'

let dir: string
let relay: FreezingRelay
let config: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sessions-silent-'))
  relay = await startFreezingRelay(6379)
  config = join(dir, 'bouncer.yaml')
  await writeFile(config, `issuers:
  - { name: sso, issuer: "https://sso.example.com", audiences: [api://bouncer] }
upstreams: [{ name: app, url: "http://127.0.0.1:9" }]
routes:
  - { id: app, path: /app/*, upstream: app, accept: [session] }
server: { hosts: [app.example.com] }
sign_in:
  issuer: sso
  client_id: bouncer
  session: { store: { type: redis, url: "redis://127.0.0.1:${relay.port}", prefix: "${uniquePrefix('silent')}", timeout: 500ms } }
`)
})

afterAll(async () => {
  relay?.close()
  await rm(dir, { recursive: true, force: true })
})

it('fails within seconds, naming the store, when Redis never answers', async () => {
  expect(await runCliInProcess(['sessions', 'list', '--config', config])).toMatchObject({ code: 0, stdout: 'no sessions\n' })
  relay.freeze()
  const started = Date.now()
  const result = await runCli(['sessions', 'list', '--config', config], { timeout: 40_000 })
  expect(result.code).toBe(1)
  expect(result.stderr).toMatch(/^bouncer: .*the session store \(Redis 127\.0\.0\.1:\d+\) failed: the session store did not answer within 500 ms/)
  expect(Date.now() - started).toBeLessThan(15_000)
}, 60_000)
