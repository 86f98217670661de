// Reload under load: requests keep the runtime they started with, so a swap never fails one,
// even when the swap replaces an upstream's pool (old pools close only once idle).
import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Pool } from 'undici'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
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
