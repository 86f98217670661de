// Reload under load: requests keep the runtime they started with, so a swap never fails one,
// even when the swap replaces an upstream's pool (old pools close only once idle).
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { constants } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { Pool, request } from 'undici'
import { stringify } from 'yaml'
import { allowAnyCaller, startTestGateway, withDefaults, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startRedis } from '../helpers/redis.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let a: TestUpstream
let b: TestUpstream
let gateway: TestGateway
let idp: TestIdentityProvider

const configFor = (upstreamUrl: string, generation: number) => ({
  issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
  ...allowAnyCaller(['corp']),
  upstreams: [{ name: 'api', url: upstreamUrl, headers: { 'X-Generation': String(generation) } }],
  routes: [
    { id: 'data', path: '/data/*', upstream: 'api' },
    ...(generation % 2 === 0 ? [{ id: 'extra', path: '/extra/*', upstream: 'api', public: true }] : []),
  ],
})

beforeAll(async () => {
  // Simulated work of 0-5 ms (not a wait for anything): answers come back out of order, so
  // requests of several generations are at the upstreams when a swap retires a pool.
  const slowish = async (_req: unknown, res: ServerResponse) => {
    await new Promise((r) => setTimeout(r, Math.random() * 5))
    res.end('ok')
  }
  a = await startUpstream(slowish)
  b = await startUpstream(slowish)
  idp = await startIdentityProvider()
  gateway = await startTestGateway(configFor(a.url, 1))
})
afterAll(async () => {
  await gateway.close()
  await a.close()
  await b.close()
  await idp.stop()
})

describe('reload under load', () => {
  it('swaps the config 20 times during 4,000 authenticated requests without failing one', async () => {
    // A distinct token per request: each verification is a real (asynchronous) signature check,
    // so requests are caught between reading the runtime and reaching the upstream by the swaps.
    const tokens = await Promise.all(Array.from({ length: 4_000 }, (_, i) => idp.mint({ sub: `svc-${i}` })))
    const client = new Pool(gateway.url, { connections: 16 })
    const statuses = new Map<number, number>()
    // What a refused request was told (its problem's code and detail), for a failure to name its cause.
    const refusals: string[] = []
    let failures = 0
    let sent = 0
    let done = 0
    const TOTAL = 4_000
    const worker = async () => {
      while (sent < TOTAL) {
        const token = tokens[sent++] as string
        try {
          const res = await client.request({ path: '/data/x', method: 'GET', headers: { authorization: `Bearer ${token}` } })
          const body = await res.body.text()
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
          if (res.statusCode !== 200 && refusals.length < 5) refusals.push(`${res.statusCode} ${body}`)
        } catch {
          failures++
        }
        done++
      }
    }
    // The swaps are spread over the load by progress, not by time: 150 more answers between two
    // reloads (20 × 150 < 4,000, so every reload happens while requests are still running).
    const reloads = (async () => {
      for (let generation = 2; generation <= 21; generation++) {
        await gateway.writeConfig(configFor(generation % 3 === 0 ? b.url : a.url, generation))
        const result = await gateway.reload()
        expect(result.ok).toBe(true)
        const until = done + 150
        await waitFor(() => done >= until || sent >= TOTAL, `${until} answers`, 20_000)
      }
    })()
    await Promise.all([...Array.from({ length: 16 }, worker), reloads])
    await client.close()
    expect(failures).toBe(0)
    expect([...statuses.keys()], refusals.join('\n')).toEqual([200])
    expect(a.received.length + b.received.length).toBe(TOTAL)
    // Requests reached both upstreams, with the headers of more than one generation.
    expect(b.received.length).toBeGreaterThan(0)
    const generations = new Set([...a.received, ...b.received].map((r) => r.headers['x-generation']))
    expect(generations.size).toBeGreaterThan(5)
  }, 120_000) // 4,000 requests and 20 reloads: seconds alone, a minute or more on a loaded machine
})

describe('a request that outlives two reloads', () => {
  // A reload closes what no config uses any more once no request needs it. A request of an older
  // runtime than the one a reload replaced could still be on its way to an upstream, and a reload to
  // another upstream closed the pool under it (502); and one long request must not keep every later
  // reload's pools open either. The request is held before its upstream call by a paused Redis (its
  // rate limit's check waits for it): a real, observable place for a request to wait.
  it('reaches the upstream of the config it started with, while what only a reload between used is closed', async () => {
    const redis = await startRedis()
    const control = new Redis(redis.url)
    // Between: an upstream only the second config names, its open connections counted.
    const between = createServer((_req, res) => res.end('between'))
    const sockets = new Set<Socket>()
    between.on('connection', (socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    // Idle connections stay open a minute (undici follows the Keep-Alive hint): one that closes within
    // the wait below was closed by the gateway's pool, not by an idle timeout.
    between.keepAliveTimeout = 60_000
    between.listen(0, '127.0.0.1')
    await once(between, 'listening')
    const betweenUrl = `http://127.0.0.1:${(between.address() as AddressInfo).port}`
    const heldConfig = (upstreamUrl: string, generation: number, prefix = 'bouncer:') => ({
      issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
      ...allowAnyCaller(['corp']),
      limits_store: { type: 'redis', url: redis.url, timeout: '30s', prefix },
      limits: [{ name: 'per-route', key: 'route', rate: '1000/s', burst: 1000 }],
      upstreams: [{ name: 'api', url: upstreamUrl, headers: { 'X-Generation': String(generation) } }],
      routes: [{ id: 'data', path: '/data/*', upstream: 'api', limits: ['per-route'] }, { id: 'open', path: '/open/*', upstream: 'api' }],
    })
    const held = await startTestGateway(heldConfig(a.url, 1))
    try {
      // The issuer's keys first (fetched at start): on a busy machine a first request could outwait the fetch.
      await waitFor(() => held.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer\'s keys', 20_000)
      const headers = { authorization: `Bearer ${await idp.mint({ sub: 'held' })}` }
      const warm = await request(`${held.url}/data/warm`, { headers })
      expect(warm.statusCode, await warm.body.text()).toBe(200) // the limiter's script is loaded and the pool to a open
      await waitFor(() => held.state.inFlight === 0, 'the warm-up request to end')
      await control.call('CLIENT', 'PAUSE', '20000', 'WRITE') // the limiter's script waits; CLIENT UNPAUSE does not
      const answer = request(`${held.url}/data/held`, { headers })
      await waitFor(() => held.state.inFlight === 1, 'the request waiting for its rate limit')

      await held.writeConfig(heldConfig(betweenUrl, 2))
      expect((await held.reload()).ok).toBe(true)
      const open = await request(`${held.url}/open/x`, { headers })
      expect(await open.body.text()).toBe('between')
      expect(sockets.size).toBe(1)
      // Neither the first runtime's upstream pool nor its limits store (its Redis connection, on
      // which the request waits) is in the config now, nor the second's pool.
      await held.writeConfig(heldConfig(b.url, 3, 'bouncer-3:'))
      expect((await held.reload()).ok).toBe(true)
      // The second runtime has no request running: its pool closes, the first's held request or not.
      await waitFor(() => sockets.size === 0, 'the pool only the second config used to close')
      expect(held.state.inFlight).toBe(1) // still held: what follows is its own runtime's doing

      await control.call('CLIENT', 'UNPAUSE')
      const res = await answer
      const body = await res.body.text()
      expect(res.statusCode, body).toBe(200)
      expect(a.received.at(-1)?.url).toBe('/data/held')
      expect(a.received.at(-1)?.headers['x-generation']).toBe('1')
    } finally {
      await control.call('CLIENT', 'UNPAUSE').catch(() => {})
      control.disconnect()
      await held.close()
      await redis.stop()
      between.close()
    }
  }, 60_000)
})

describe('a reload once shutdown has begun', () => {
  it('is refused, and the request in flight finishes on the running config', async () => {
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    const slow = await startUpstream(async (_req, res) => {
      await released
      res.end('finished')
    })
    const draining = await startTestGateway({ upstreams: [{ name: 'api', url: slow.url }], routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }] })
    try {
      const answer = request(`${draining.url}/open/x`)
      await waitFor(() => slow.received.length === 1, 'the request to reach the upstream')
      const closing = draining.close()
      await waitFor(() => draining.state.draining, 'the shutdown to begin')
      await draining.writeConfig({ upstreams: [{ name: 'api', url: a.url }], routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }] })
      expect(await draining.reload()).toEqual({ ok: false, errors: ['the gateway is shutting down: the config is not reloaded'] })
      expect(draining.logs.join('')).toContain('config reload refused: the gateway is shutting down')
      release()
      const res = await answer
      expect(res.statusCode).toBe(200)
      expect(await res.body.text()).toBe('finished')
      await closing
    } finally {
      release()
      await slow.close()
    }
  }, 30_000)
})

describe('a reload asked for while one is under way', () => {
  it('reads the file again once it ends: an edit saved meanwhile is applied', async () => {
    const routes = (ids: string[]) => ({ upstreams: [{ name: 'api', url: a.url }], routes: ids.map((id) => ({ id, path: `/${id}`, upstream: 'api', public: true })) })
    const gw = await startTestGateway(routes(['first']))
    // The config file becomes a named pipe: each load reads what the test writes when it says so.
    await rm(gw.file)
    execFileSync('mkfifo', [gw.file])
    const feed = async (config: Record<string, unknown>) => {
      const writer = await open(gw.file, 'w') // returns once a load has opened the file
      await writer.writeFile(stringify(withDefaults(config, gw.dir)))
      await writer.close()
    }
    try {
      const under = gw.reload() // reading the file
      const asked = gw.reload() // asked for meanwhile, after an edit the first may not have read
      await feed(routes(['first', 'second']))
      expect(await under).toMatchObject({ ok: true })
      void feed(routes(['first', 'second', 'third'])) // the edit saved while the first load ran
      expect(await asked).toMatchObject({ ok: true })
      // Before, the second request shared the first load: its edit waited for the next reload.
      expect((await request(`${gw.url}/third`)).statusCode).toBe(200)
    } finally {
      // A writer still waiting for a load that never came: be its reader, so it returns.
      await (await open(gw.file, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => null))?.close()
      await gw.close()
    }
  }, 30_000)
})

describe('a reload that changes server.workers', () => {
  it('says it takes effect at the next restart, at every reload until then, and keeps serving', async () => {
    const config = (server: Record<string, unknown>) => ({ server, upstreams: [{ name: 'api', url: a.url }], routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }] })
    const gw = await startTestGateway(config({}))
    try {
      const restart = 'a changed server.workers takes effect at the next restart'
      await gw.writeConfig(config({ workers: 2 }))
      // Before, ok with no word: the gateway went on in one thread while its config said two.
      const first = await gw.reload()
      expect(first).toMatchObject({ ok: true })
      expect(first.ok && first.warnings).toContain(restart)
      const second = await gw.reload()
      expect(second.ok && second.warnings).toContain(restart)
      expect((await request(`${gw.url}/open`)).statusCode).toBe(200)
      await gw.writeConfig(config({ workers: 1 }))
      const back = await gw.reload()
      expect(back.ok && back.warnings).not.toContain(restart)
    } finally {
      await gw.close()
    }
  })
})

describe('a reload that changes server.max_header_bytes', () => {
  it('says it takes effect at the next restart: an HTTP/1.1 request keeps the limit the listener was made with', async () => {
    const config = (server: Record<string, unknown>) => ({ server, upstreams: [{ name: 'api', url: a.url }], routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }] })
    const gw = await startTestGateway(config({ max_header_bytes: 16_384 }))
    try {
      await gw.writeConfig(config({ max_header_bytes: 4_096 }))
      const reloaded = await gw.reload()
      expect(reloaded.ok && reloaded.warnings).toContain('a changed server.max_header_bytes takes effect at the next restart')
      // Until then, 8 KB of headers still pass on HTTP/1.1, as the warning says.
      expect((await request(`${gw.url}/open`, { headers: { 'x-big': 'a'.repeat(8_192) } })).statusCode).toBe(200)
    } finally {
      await gw.close()
    }
  })
})
