// `bouncer healthcheck`, the container image's HEALTHCHECK: it asks the admin listener the config
// names for /readyz, follows BOUNCER_ADMIN_LISTEN, and keeps reporting a gateway that serves its
// previous config healthy when the file has since been broken (a reload would refuse it too).
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { deferred } from '../helpers/wait.ts'

let dir: string
let gateway: TestGateway
let adminPort: number

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-healthcheck-'))
  gateway = await startTestGateway({})
  adminPort = Number(new URL(gateway.adminUrl).port)
})

afterAll(async () => {
  await gateway.close()
  await rm(dir, { recursive: true, force: true })
})

async function healthcheck(yaml: string, env: NodeJS.ProcessEnv = {}) {
  const file = join(dir, `hc-${Math.random().toString(36).slice(2)}.yaml`)
  await writeFile(file, yaml)
  return runCliInProcess(['healthcheck', '--config', file], { env: { BOUNCER_ADMIN_LISTEN: '', ...env } })
}

describe('bouncer healthcheck', () => {
  it('exits 0 when the admin listener the config names answers ready, reaching 0.0.0.0 through loopback', async () => {
    expect(await healthcheck(`admin:\n  listen: 0.0.0.0:${adminPort}\n`)).toEqual({ code: 0, stdout: `ready: http://127.0.0.1:${adminPort}/readyz\n`, stderr: '' })
  })

  it('follows BOUNCER_ADMIN_LISTEN when the file names no admin address', async () => {
    expect(await healthcheck('audit: { sinks: [] }\n', { BOUNCER_ADMIN_LISTEN: `127.0.0.1:${adminPort}` })).toMatchObject({ code: 0 })
  })

  it('still finds the admin listener in a file that no longer validates', async () => {
    expect(await healthcheck(`admin:\n  listen: 127.0.0.1:${adminPort}\nroutes: not-a-list\n`)).toMatchObject({ code: 0, stdout: `ready: http://127.0.0.1:${adminPort}/readyz\n` })
  })

  it('exits 1 with the answer when the gateway is not ready', async () => {
    const keysHeld = deferred()
    const keys = await startUpstream(async (_req, res) => {
      await keysHeld.promise
      res.writeHead(503).end()
    })
    const loading = await startTestGateway({ issuers: [{ name: 'slow', issuer: 'https://slow.example/', audiences: ['a'], jwks_uri: `${keys.url}/jwks` }] })
    try {
      const port = new URL(loading.adminUrl).port
      const result = await healthcheck(`admin:\n  listen: 127.0.0.1:${port}\n`)
      expect(result.code).toBe(1)
      expect(result.stdout).toBe('')
      expect(result.stderr).toMatch(new RegExp(`^bouncer: not ready: http://127\\.0\\.0\\.1:${port}/readyz answered 503 \\{"status":"not ready".*"issuer:slow":"loading"`))
    } finally {
      keysHeld.resolve()
      await loading.close()
      await keys.close()
    }
  })

  it('exits 1 when nothing answers, and 2 for a bad --timeout', async () => {
    const server = createServer().listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    server.close()
    await once(server, 'close')
    const result = await healthcheck(`admin:\n  listen: 127.0.0.1:${port}\n`)
    expect(result).toMatchObject({ code: 1, stdout: '', stderr: `bouncer: not ready: http://127.0.0.1:${port}/readyz: no answer (ECONNREFUSED)\n` })
    expect((await runCliInProcess(['healthcheck', '--timeout', 'soon'])).code).toBe(2)
  })

  // It asked port 0 and said "no answer (ECONNREFUSED)", as though the gateway were down (a probe).
  it('says that an admin.listen of port 0 cannot be asked', async () => {
    expect(await healthcheck('admin:\n  listen: 127.0.0.1:0\n')).toEqual({
      code: 1, stdout: '', stderr: 'bouncer: admin.listen has port 0, which the gateway picks as it starts: give admin.listen a fixed port for the health check to ask\n',
    })
  })
})
