// The gateway as an operator runs it: `bouncer check`, `bouncer serve`, signals, the admin API.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startServe, type ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitForText } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'test-admin-token-0123456789'
let dir: string
let upstream: TestUpstream
const running: ServeProcess[] = []
/** A request to /hello/slow waits at the upstream until the test releases it. */
let slow = { arrived: deferred(), release: deferred() }

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-life-'))
  upstream = await startUpstream(async (req, res) => {
    if (req.url?.endsWith('/slow')) {
      slow.arrived.resolve()
      await slow.release.promise
    }
    res.end(`hello from ${req.url}`)
  })
})
afterEach(async () => {
  while (running.length > 0) await running.pop()?.stop('SIGKILL')
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

function config(extraRoutes: object[] = [], admin: object = { token: ADMIN_TOKEN }) {
  return {
    server: { listen: '127.0.0.1:0', shutdown_timeout: '5s' },
    admin: { listen: '127.0.0.1:0', ...admin },
    audit: { sinks: [] },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }, ...extraRoutes],
  }
}

async function writeConfig(name: string, body: object | string): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, typeof body === 'string' ? body : stringify(body))
  return file
}

async function serve(file: string): Promise<ServeProcess> {
  const proc = await startServe(['--config', file])
  running.push(proc)
  return proc
}

async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await request(url, { method, headers })
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers }
}

describe('bouncer check', () => {
  it('prints ok and exits 0 for a valid config', async () => {
    const file = await writeConfig('valid.yaml', config())
    expect(await runCli(['check', '--config', file])).toMatchObject({ code: 0, stdout: 'ok\n', stderr: '' })
  })

  it('prints PATH:LINE:COL lines and exits 1 for an invalid one', async () => {
    const file = await writeConfig('invalid.yaml', 'routes:\n  - id: a\n    path: /a\n    upstream: nowhere\n    public: true\n')
    const result = await runCli(['check', '--config', file])
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(`${file}:4:15: routes[0].upstream: unknown upstream "nowhere"\n`)
    expect(result.stdout).toBe('')
  })

  it('finds the config through $BOUNCER_CONFIG', async () => {
    const file = await writeConfig('env.yaml', config())
    expect(await runCli(['check'], { env: { BOUNCER_CONFIG: file } })).toMatchObject({ code: 0 })
  })

  it('says so when the file is missing', async () => {
    const result = await runCli(['check', '--config', join(dir, 'nope.yaml')])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('nope.yaml:1:1: cannot read the config file: no such file')
  })

  it('exits 2 on a usage error', async () => {
    expect((await runCli(['check', '--bogus'])).code).toBe(2)
    expect((await runCli(['frobnicate'])).code).toBe(2)
    expect((await runCli(['serve', '--port', 'abc', '--config', await writeConfig('p.yaml', config())])).code).toBe(2)
  })
})

describe('bouncer serve', () => {
  // One `bouncer serve` on config() for the tests that only read it or reload it (each reloads its
  // own route ids, and reads only the log lines written since it began), instead of one each.
  let shared: { gw: ServeProcess; file: string }
  beforeAll(async () => {
    const file = await writeConfig('shared.yaml', config())
    shared = { gw: await startServe(['--config', file], { startTimeout: 50_000 }), file } // one start stands for five tests: more time on a loaded machine
  })
  afterAll(async () => {
    await shared?.gw.stop('SIGKILL')
  })
  /** The shared gateway, back on config(): what the tests below start from. */
  async function onFreshConfig(): Promise<{ gw: ServeProcess; file: string }> {
    await writeConfig('shared.yaml', config())
    const ok = await get(`${shared.gw.adminUrl}/api/reload`, { authorization: `Bearer ${ADMIN_TOKEN}` }, 'POST')
    expect(ok.status, ok.text).toBe(200)
    return shared
  }

  it('refuses to start on an invalid config and says why', async () => {
    const file = await writeConfig('bad.yaml', 'server:\n  listen: nowhere\n')
    const result = await runCli(['serve', '--config', file])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`${file}:2:11: server.listen: invalid listen address "nowhere"`)
    expect(result.stderr).toContain('refusing to start')
    expect(result.stderr).not.toMatch(/\n\s+at /) // no stack trace
  })

  it('prints one line per listener, and warns when the admin API has no auth', async () => {
    const gw = await serve(await writeConfig('noauth.yaml', config([], {})))
    await expect.poll(() => gw.stdout()).toMatch(/^gateway listening on http:\/\/127\.0\.0\.1:\d+\nadmin listening on http:\/\/127\.0\.0\.1:\d+\n$/)
    await expect.poll(() => gw.stderr()).toContain('admin API disabled')
    const api = await get(`${gw.adminUrl}/api/routes`, { authorization: `Bearer ${ADMIN_TOKEN}` })
    expect(api.status).toBe(401)
    expect(JSON.parse(api.text)).toMatchObject({ code: 'unauthorized' })
  })

  it('serves /healthz and /readyz, and guards /api/* with the admin token', async () => {
    const { gw } = await onFreshConfig()
    expect((await get(`${gw.adminUrl}/healthz`)).status).toBe(200)
    expect((await get(`${gw.adminUrl}/readyz`)).status).toBe(200)
    expect(JSON.parse((await get(`${gw.adminUrl}/api/routes`)).text)).toMatchObject({ status: 401, code: 'missing_token' })
    expect(JSON.parse((await get(`${gw.adminUrl}/api/routes`, { authorization: 'Bearer wrong' })).text)).toMatchObject({ status: 401, code: 'unauthorized' })
    const routes = await get(`${gw.adminUrl}/api/routes`, { authorization: `Bearer ${ADMIN_TOKEN}` })
    expect(routes.status).toBe(200)
    expect(JSON.parse(routes.text)).toEqual([expect.objectContaining({ id: 'hello', path: '/hello/*', upstream: 'api' })])
  })

  it('SIGTERM: finishes the request in flight, refuses new connections, exits 0', async () => {
    const gw = await serve(await writeConfig('drain.yaml', config()))
    slow = { arrived: deferred(), release: deferred() }
    const inFlight = get(`${gw.url}/hello/slow`)
    await slow.arrived.promise // in flight: at the upstream
    gw.child.kill('SIGTERM')
    await waitForText(gw.stderr, '"msg":"draining"')
    slow.release.resolve()
    const response = await inFlight
    expect(response.status).toBe(200)
    expect(response.text).toBe('hello from /hello/slow')
    expect(response.headers.connection).toBe('close')
    expect(await gw.exited).toBe(0)
    await expect(request(`${gw.url}/hello/x`)).rejects.toThrow()
  })

  it('SIGHUP: reloads the config without a restart', async () => {
    const { gw } = await onFreshConfig()
    expect((await get(`${gw.url}/new-hup/x`)).status).toBe(404)
    await writeConfig('shared.yaml', config([{ id: 'new-hup', path: '/new-hup/*', upstream: 'api', public: true }]))
    gw.child.kill('SIGHUP')
    await expect.poll(async () => (await get(`${gw.url}/new-hup/x`)).status, { timeout: 20_000 }).toBe(200)
    expect((await get(`${gw.url}/hello/x`)).status).toBe(200)
  })

  it('SIGHUP with a broken config: keeps serving the old one and logs why', async () => {
    const { gw } = await onFreshConfig()
    const from = gw.stderr().length // only this test's lines
    await writeConfig('shared.yaml', 'routes:\n  - id: x\n    path: no-slash\n    upstream: api\n')
    gw.child.kill('SIGHUP')
    await expect.poll(() => gw.stderr().slice(from), { timeout: 20_000 }).toContain('config reload refused')
    expect(gw.stderr().slice(from)).toContain('routes[0].path: a path starts with')
    expect((await get(`${gw.url}/hello/x`)).status).toBe(200)
  })

  it('POST /api/reload: swaps in a valid config, refuses an invalid one with the reasons', async () => {
    const { gw, file } = await onFreshConfig()
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
    expect((await get(`${gw.url}/new-api/x`)).status).toBe(404)
    await writeConfig('shared.yaml', config([{ id: 'new-api', path: '/new-api/*', upstream: 'api', public: true }]))
    const ok = await get(`${gw.adminUrl}/api/reload`, auth, 'POST')
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.text)).toMatchObject({ ok: true })
    expect((await get(`${gw.url}/new-api/x`)).status).toBe(200)

    await writeConfig('shared.yaml', 'upstreams: 7\n')
    const refused = await get(`${gw.adminUrl}/api/reload`, auth, 'POST')
    expect(refused.status).toBe(422)
    expect(JSON.parse(refused.text)).toEqual({ ok: false, errors: [`${file}:1:12: upstreams: expected array, received number`] })
    expect((await get(`${gw.url}/new-api/x`)).status).toBe(200)
  })
})
