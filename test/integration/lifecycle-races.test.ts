// Lifecycle races beside the ones reload.test.ts covers: what a request that started on one config
// needs from the gateway's state, and what a reload or a shutdown closes or replaces under it. Each
// request is held at a real, observable point (its body not yet complete: the pipeline waits for it
// after the stages decided, before the backend serves; an upstream that has not answered yet), and
// the test waits on the gateway's own counters (`state.inFlight`) or on the upstream's requests,
// never on sleeps.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServe } from '../helpers/cli.ts'
import { allowAnyCaller, startTestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, DEFAULT_CLIENTS, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startRedis } from '../helpers/redis.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor, waitForText } from '../helpers/wait.ts'

let idp: TestIdentityProvider

beforeAll(async () => {
  idp = await startIdentityProvider({
    clients: [
      ...DEFAULT_CLIENTS,
      { clientId: 'alice-app', secret: 'alice-app-secret-0123456789abcdef' },
      { clientId: 'reports-agent', secret: 'reports-agent-secret-0123456789ab' },
    ],
  })
}, 60_000)
afterAll(async () => {
  await idp?.stop()
})

/**
 * A request whose body is sent in two parts: the first with the head, the rest when `finish` is
 * called. The gateway holds it after authentication, authorization and limits, waiting for the body
 * (pipeline.ts awaitBody), with the runtime it started on.
 */
function heldPost(url: string, headers: Record<string, string>, body: string) {
  const stream = new PassThrough()
  const half = Math.floor(body.length / 2)
  stream.write(body.slice(0, half))
  const answer = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, body: stream })
  return { answer, finish: () => stream.end(body.slice(half)) }
}

describe('the identity assertion of a request that outlives a reload', () => {
  // A request's route and upstream are its runtime's (the upstream's pool is even kept open for it,
  // retireUnused), but the assertion signer is read from the gateway's state when the request is
  // served (pipeline.ts assertionHeader reads state.assertions). A reload to a config in which no
  // upstream asks for assertions sets it to null: the held request still goes to its upstream, one
  // whose config says it must carry X-Bouncer-Assertion, without one. An upstream that relies on the
  // assertion refuses it (here 401, passed through to the client); one that only reads it when
  // present serves it as nobody.
  it('still carries X-Bouncer-Assertion to the upstream whose config asked for one', async () => {
    const strict = await startUpstream(async (req, res) => {
      if (req.headers['x-bouncer-assertion'] === undefined) {
        res.writeHead(401, { 'content-type': 'text/plain' })
        res.end('no assertion')
        return
      }
      res.end('ok')
    })
    const plain = await startUpstream()
    const base = { issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }], ...allowAnyCaller(['corp']) }
    const gateway = await startTestGateway({
      ...base,
      upstreams: [{ name: 'api', url: strict.url, identity_assertion: true }],
      routes: [{ id: 'data', path: '/data/*', upstream: 'api' }],
    })
    try {
      const authorization = `Bearer ${await idp.mint({ sub: 'svc-held' })}`
      const warm = await request(`${gateway.url}/data/warm`, { headers: { authorization } })
      expect(await warm.body.text()).toBe('ok') // keys loaded, the assertion signed and accepted
      const held = heldPost(`${gateway.url}/data/held`, { authorization, 'content-type': 'text/plain' }, 'a body in two parts')
      await waitFor(() => gateway.state.inFlight === 1, 'the request to wait for the rest of its body')

      // The new config routes /data elsewhere, to an upstream that wants no assertion.
      await gateway.writeConfig({ ...base, upstreams: [{ name: 'v2', url: plain.url }], routes: [{ id: 'data', path: '/data/*', upstream: 'v2' }] })
      expect((await gateway.reload()).ok).toBe(true)

      held.finish()
      const res = await held.answer
      const body = await res.body.text()
      expect(strict.received.at(-1)?.url).toBe('/data/held') // it went where its own config sent it
      expect(strict.received.at(-1)?.headers['x-bouncer-assertion'], 'the held request reached its upstream without the assertion its config promised').toBeDefined()
      expect(res.statusCode, body).toBe(200)
    } finally {
      await gateway.close()
      await strict.close()
      await plain.close()
    }
  }, 30_000)
})

describe('a token exchange that outlives a reload', () => {
  // POST /oauth2/token signs with `deps.builtIns.exchangeKeys()`, that is state.exchangeKeys when it
  // signs, not the keys of the runtime the request started on. A reload that turns token_exchange
  // off sets them to null while an exchange is in flight (here: its form still arriving), and the
  // client that the endpoint of its own config accepted gets 500 internal_error "The token exchange
  // has no signing key." instead of its token.
  it('issues the token from the config it started on', async () => {
    const corp = (subject: string) => ({ issuer: 'corp', subject })
    const withExchange = (enabled: boolean) => ({
      issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
      roles: [
        { name: 'analyst', assumed_by: [corp('alice-app')], policies: ['analysts'] },
        { name: 'agent', assumed_by: [corp('reports-agent')], policies: ['analysts'] },
      ],
      policies: [{ name: 'analysts', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['reports'] }] }],
      upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
      routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
      ...(enabled ? { token_exchange: { issuer: 'https://gateway.test', audiences: ['https://gateway.test'], lifetime: '10m', actors: [{ role: 'agent', delegated_roles: ['analyst'] }] } } : {}),
    })
    const gateway = await startTestGateway(withExchange(true))
    try {
      await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys', 20_000)
      const [alice, agent] = await Promise.all([idp.token('alice-app'), idp.token('reports-agent')])
      const form = new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: alice,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        actor_token: agent,
        actor_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      }).toString()
      const held = heldPost(`${gateway.url}/oauth2/token`, { 'content-type': 'application/x-www-form-urlencoded' }, form)
      await waitFor(() => gateway.state.inFlight === 1, 'the exchange to wait for the rest of its form')

      await gateway.writeConfig(withExchange(false))
      expect((await gateway.reload()).ok).toBe(true)

      held.finish()
      const res = await held.answer
      const body = await res.body.text()
      expect(res.statusCode, body).toBe(200)
      expect(JSON.parse(body)).toMatchObject({ token_type: 'Bearer', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' })
    } finally {
      await gateway.close()
    }
  }, 30_000)
})

describe('server.workers: a drain after a reload that lengthened shutdown_timeout', () => {
  // Each worker drains by its own runtime's shutdown_timeout, the reloaded one; but the primary cuts
  // a draining worker short (thread.terminate()) at the shutdown_timeout of the config it STARTED
  // with plus a 5 s margin (supervisor.ts stopWorker reads `config`, never updated by a reload; so
  // does cli/serve.ts's hard exit through Serving.config()). A request the reloaded config gives 30 s
  // to finish is cut after 1 s + 5 s: the client's connection is reset, with no answer.
  it('lets the request in flight finish within the reloaded shutdown_timeout', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-lifecycle-workers-'))
    const file = join(dir, 'bouncer.yaml')
    const released = deferred()
    const upstream = await startUpstream(async (_req, res) => {
      await released.promise
      res.end('finished')
    })
    const config = (shutdownTimeout: string) => ({
      server: { listen: '127.0.0.1:0', workers: 2, shutdown_timeout: shutdownTimeout },
      admin: { listen: '127.0.0.1:0', token: 'lifecycle-workers-admin-token-0123456789' },
      audit: { sinks: [], spill_dir: join(dir, 'spill') },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'slow', path: '/slow', upstream: 'api', public: true }],
    })
    await writeFile(file, stringify(config('1s')))
    const gateway = await startServe(['--config', file], { startTimeout: 90_000 })
    try {
      await writeFile(file, stringify(config('30s')))
      const reloaded = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: 'Bearer lifecycle-workers-admin-token-0123456789' } })
      expect(await reloaded.body.json()).toMatchObject({ ok: true })
      let cut = false
      const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
        get(`${gateway.url}/slow`, { agent: false }, (res) => {
          let body = ''
          res.on('data', (chunk: Buffer) => (body += chunk.toString()))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
          res.on('error', reject)
        }).on('error', (err) => {
          cut = true
          reject(err)
        })
      })
      answer.catch(() => {})
      await waitFor(() => upstream.received.length === 1, 'the request to reach the upstream', 30_000)
      gateway.child.kill('SIGTERM')
      await waitForText(gateway.stderr, '"msg":"draining"', 10_000)
      // The hard stop is a deadline, so its absence can only be seen by waiting past it: the cut
      // comes 6 s after the drain began; a drain that honors 30 s keeps the request until released.
      await waitFor(() => cut, 'the worker to be cut short', 9_000).catch(() => {})
      expect(cut, 'the primary terminated the draining worker at the start config\'s shutdown_timeout').toBe(false)
      released.resolve()
      expect(await answer).toEqual({ status: 200, body: 'finished' })
      expect(await gateway.exited).toBe(0)
    } finally {
      released.resolve()
      await gateway.stop('SIGKILL')
      await upstream.close()
      await rm(dir, { recursive: true, force: true })
    }
  }, 120_000)
})

describe('a sign-in session store the reloaded config no longer uses', () => {
  // retireUnused (reload.ts) closes pools, key sets, limits stores, API key stores, functions' and
  // datasets' pools that no runtime uses; sign-in session stores (compile.sessionStores) are not in
  // its list, nor MCP server clients or approvals stores (agents registry): they stay open until
  // shutdown. A reload that moves sign_in.session.store elsewhere leaves the old store's Redis
  // connection open for the life of the process (one more per reload that changes the store), while
  // the limits store dropped by the same reload is closed.
  it('is closed, like the limits store the same reload dropped', async () => {
    const redis = await startRedis()
    const control = new Redis(redis.url)
    const others = async () => ((await control.call('CLIENT', 'LIST')) as string).trim().split('\n').length - 1
    const withStores = (onRedis: boolean) => ({
      issuers: [{ name: 'sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
      ...allowAnyCaller(['sso']),
      sign_in: { issuer: 'sso', client_id: 'bouncer-web', client_secret: 'bouncer-web-client-secret-0123456789', scopes: ['openid'], session: { store: onRedis ? { type: 'redis', url: redis.url, prefix: 'sessions:' } : 'memory' } },
      ...(onRedis ? { limits_store: { type: 'redis', url: redis.url, prefix: 'limits:' } } : {}),
      upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'api', accept: ['session', 'bearer'] }],
    })
    const gateway = await startTestGateway(withStores(true))
    try {
      await waitFor(async () => (await others()) === 2, 'the session store and the limits store to connect')
      await gateway.writeConfig(withStores(false))
      expect((await gateway.reload()).ok).toBe(true)
      await waitFor(async () => (await others()) <= 1, 'the limits store to close')
      await waitFor(async () => (await others()) === 0, 'the session store no config uses any more to close', 5_000)
    } finally {
      control.disconnect()
      await gateway.close()
      await redis.stop()
    }
  }, 30_000)
})
