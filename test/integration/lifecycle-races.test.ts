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
import { tokenForm } from '../helpers/exchange.ts'
import { allowAnyCaller, startTestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, DEFAULT_CLIENTS, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { MCP_RESOURCE, mcpTestConfig } from '../helpers/mcp.ts'
import { startRedis } from '../helpers/redis.ts'
import { signInConfig } from '../helpers/sign-in.ts'
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
  // A request's route and upstream are its runtime's (the upstream's pool is kept open for it,
  // retireUnused), and so is its signer (Runtime.signing). It once was the gateway's current signer,
  // read when the request was served: a reload to a config in which no upstream asks for assertions
  // set it to null, and the held request went to its upstream, one whose config says it must carry
  // X-Bouncer-Assertion, without one. An upstream that relies on the assertion refuses it (here 401,
  // passed through to the client); one that only reads it when present would serve it as nobody.
  // The key it signs with must stay published meanwhile, though no config asks for assertions now.
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

      // While it may still sign, the signer of its config stays published, though no config asks for assertions now.
      const jwks = (await (await request(`${gateway.url}/.well-known/jwks.json`)).body.json()) as { keys: Array<{ kid: string }> }
      held.finish()
      const res = await held.answer
      const body = await res.body.text()
      expect(strict.received.at(-1)?.url).toBe('/data/held') // it went where its own config sent it
      const assertion = strict.received.at(-1)?.headers['x-bouncer-assertion']
      expect(assertion, 'the held request reached its upstream without the assertion its config promised').toBeDefined()
      expect(res.statusCode, body).toBe(200)
      const { kid } = JSON.parse(Buffer.from(String(assertion).split('.')[0] as string, 'base64url').toString()) as { kid: string }
      expect(jwks.keys.map((key) => key.kid)).toContain(kid)
      // Its request over, the replaced config retires (its pool to the strict upstream closes): the
      // key stays published for an assertion's ttl after, since an upstream may check the assertion
      // it holds later than it got it. It left the JWKS with the runtime before.
      await waitFor(() => strict.connections() === 0, 'the replaced config to retire')
      const after = (await (await request(`${gateway.url}/.well-known/jwks.json`)).body.json()) as { keys: Array<{ kid: string }> }
      expect(after.keys.map((key) => key.kid)).toContain(kid)
    } finally {
      await gateway.close()
      await strict.close()
      await plain.close()
    }
  }, 30_000)
})

describe('a token exchange that outlives a reload', () => {
  // POST /oauth2/token signs with the keys of the runtime the request started on. It once read the
  // gateway's current keys when it signed: a reload that turned token_exchange off while an exchange
  // was in flight (here: its form still arriving) answered the client that the endpoint of its own
  // config had accepted 500 internal_error "The token exchange has no signing key.".
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
      const form = tokenForm({ subject: alice, actor: agent })
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

describe('an MCP tool call in a 2025-era session', () => {
  // A shutdown, and a reload that moves mcp.path, once closed every session's transport at once, and
  // with it the answer stream of every request of the session still running: a tools/call already
  // sent on to its route's upstream went on (reached the upstream, was audited) but the client got
  // 200 and an event stream that ended with no JSON-RPC answer. Sessions are now quiesced instead
  // (sessions.ts): their notification streams end, their calls in flight are drained like any request.
  const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'held', version: '1' } } })
  const call = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'get_daily_report', arguments: { region: 'emea' } } })
  const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

  /** A tools/call held at its route's upstream while `end` runs; `end` answers what is left to await once the upstream has answered. */
  async function heldCall(end: (gateway: Awaited<ReturnType<typeof startTestGateway>>, config: ReturnType<typeof mcpTestConfig>) => Promise<{ rest: Promise<unknown> }>): Promise<void> {
    const released = deferred()
    const upstream = await startUpstream(async (_req, res) => {
      await released.promise
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"rows":3}')
    })
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-lifecycle-mcp-'))
    const config = mcpTestConfig(idp.issuer, upstream.url, dir)
    const gateway = await startTestGateway(config)
    let rest: Promise<unknown> = Promise.resolve()
    try {
      await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
      const token = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
      const opened = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}` }, body: initialize })
      expect(opened.statusCode).toBe(200)
      await opened.body.dump()
      const sessionHeaders = { ...mcpHeaders, 'mcp-session-id': opened.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${token}` }
      const answer = request(`${gateway.url}/mcp`, { method: 'POST', headers: sessionHeaders, body: call })
      await waitFor(() => upstream.received.length === 1, 'the tool call to reach the route\'s upstream')

      rest = (await end(gateway, config)).rest
      released.resolve()
      const res = await answer
      const body = await res.body.text()
      expect(res.statusCode).toBe(200)
      expect(body, 'the session\'s answer stream ended without the call\'s result').toContain('"id":7')
      expect(body).toContain('rows')
    } finally {
      released.resolve()
      await rest
      await gateway.close() // after a shutdown: a no-op but for the temporary directory
      await upstream.close()
      await rm(dir, { recursive: true, force: true })
    }
  }

  it('answers when a shutdown begins while it runs: the shutdown drains it like any request', async () => {
    await heldCall(async (gateway) => {
      // Not awaited here: the shutdown waits for the call's internal request, which is held until
      // the upstream is released (shutdown_timeout is 30 s by default).
      const rest = gateway.shutdown()
      await waitFor(() => gateway.state.draining, 'the shutdown to begin')
      return { rest }
    })
  }, 60_000)

  it('ends its notification stream when a shutdown begins, so the drain does not wait 30 s for it', async () => {
    const upstream = await startUpstream()
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-lifecycle-mcp-'))
    const gateway = await startTestGateway(mcpTestConfig(idp.issuer, upstream.url, dir)) // shutdown_timeout: 30 s
    try {
      await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
      const token = await idp.token('analytics-agent', { resource: MCP_RESOURCE })
      const opened = await request(`${gateway.url}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}` }, body: initialize })
      await opened.body.dump()
      const sessionHeaders = { 'mcp-session-id': opened.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-06-18', authorization: `Bearer ${token}` }
      const stream = await request(`${gateway.url}/mcp`, { method: 'GET', headers: { ...sessionHeaders, accept: 'text/event-stream' } })
      expect(stream.statusCode).toBe(200)
      await waitFor(() => gateway.state.inFlight === 1, 'the notification stream to be open')
      const started = Date.now()
      await gateway.shutdown()
      await stream.body.text() // ended, not cut: the gateway closed it
      expect(Date.now() - started).toBeLessThan(15_000)
    } finally {
      await gateway.close()
      await upstream.close()
      await rm(dir, { recursive: true, force: true })
    }
  }, 30_000)

  it('answers when a reload moves mcp.path while it runs', async () => {
    await heldCall(async (gateway, config) => {
      await gateway.writeConfig({ ...config, mcp: { ...(config.mcp as object), path: '/mcp-v2' } })
      expect((await gateway.reload()).ok).toBe(true)
      return { rest: Promise.resolve() }
    })
  }, 60_000)
})

describe('server.workers: a drain after a reload that lengthened shutdown_timeout', () => {
  // Each worker drains by its own runtime's shutdown_timeout, the reloaded one. The primary once cut a
  // draining worker short (thread.terminate()) at the shutdown_timeout of the config it STARTED with
  // plus a 5 s margin: a request the reloaded config gives 30 s to finish was cut after 1 s + 5 s,
  // its connection reset with no answer. A worker now tells the primary its timeout as it begins
  // to drain, whether the primary's reload set it or the worker's own (watch_config).
  // The two cases side by side: each owns its directory, upstream and gateway, and most of each is
  // the 8 s wait past the hard stop, which they can wait out together.
  it.concurrent.for([['by the admin API', false], ['by each worker itself, watching the file', true]] as const)('lets the request in flight finish within the reloaded shutdown_timeout (reloaded %s)', { timeout: 120_000 }, async ([_how, watching], { expect }) => {
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-lifecycle-workers-'))
    const file = join(dir, 'bouncer.yaml')
    const released = deferred()
    const upstream = await startUpstream(async (_req, res) => {
      await released.promise
      res.end('finished')
    })
    const config = (shutdownTimeout: string) => ({
      server: { listen: '127.0.0.1:0', workers: 2, shutdown_timeout: shutdownTimeout, watch_config: watching },
      admin: { listen: '127.0.0.1:0', token: 'lifecycle-workers-admin-token-0123456789' },
      audit: { sinks: [], spill_dir: join(dir, 'spill') },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'slow', path: '/slow', upstream: 'api', public: true }],
    })
    await writeFile(file, stringify(config('100ms')))
    const gateway = await startServe(['--config', file], { startTimeout: 90_000 })
    try {
      await writeFile(file, stringify(config('30s')))
      if (watching) {
        // Each worker reloads on its own: the primary is told nothing until a drain.
        await waitFor(() => (gateway.stderr().match(/"msg":"config reloaded"/g) ?? []).length >= 2, 'both workers to reload the file', 20_000)
      } else {
        const reloaded = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: 'Bearer lifecycle-workers-admin-token-0123456789' } })
        expect(await reloaded.body.json()).toMatchObject({ ok: true })
      }
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
      // comes 5.1 s after the drain began (100 ms and the primary's 5 s margin); a drain that honors
      // 30 s keeps the request until released.
      await waitFor(() => cut, 'the worker to be cut short', 8_000).catch(() => {})
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
  })
})

describe('a sign-in session store the reloaded config no longer uses', () => {
  // retireUnused (reload.ts) closes what no runtime uses any more. Sign-in session stores were once
  // missing from its list: a reload that moved sign_in.session.store elsewhere left the old store's
  // Redis connection open for the life of the process, while the limits store dropped by the same
  // reload was closed. (MCP server clients and approvals stores are still closed only at shutdown.)
  it('is closed, like the limits store the same reload dropped', async () => {
    const redis = await startRedis()
    const control = new Redis(redis.url)
    const others = async () => ((await control.call('CLIENT', 'LIST')) as string).trim().split('\n').length - 1
    const withStores = (onRedis: boolean) => ({
      ...signInConfig(idp, { scopes: ['openid'], session: { store: onRedis ? { type: 'redis', url: redis.url, prefix: 'sessions:' } : 'memory' } }),
      ...allowAnyCaller(['sso']),
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
