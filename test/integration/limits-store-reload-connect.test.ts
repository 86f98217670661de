// Found by a reload probe (helper): a reload that made a new Redis limits store swapped it in
// before it had connected. ioredis fails commands at once until then (no offline queue), so the
// limited requests right after the reload met on_error: 503 limits_unavailable with deny, no limit
// at all with allow (65-75 of 100 such requests in the probe). And on_error was part of the store's
// identity, so flipping it alone (allow -> deny, as an incident runbook would) opened a new
// connection each time and hit the same gap.
//
// Found by the limits probe: a gateway (or a crashed worker's replacement) started on a Redis limits
// store listened before the store had connected, so its first limited requests met on_error too.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { closeAfterEach, upstreamForFile } from '../helpers/lifecycle.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { waitFor } from '../helpers/wait.ts'

const upstream = upstreamForFile((_req, res) => void res.end('ok'))
const closeLater = closeAfterEach()

function configWith(limitsStore: object): Record<string, unknown> {
  return {
    upstreams: [{ name: 'api', url: upstream().url }],
    limits: [{ name: 'pace', key: 'header:X-Client', rate: '1000/s', burst: 1000 }],
    limits_store: limitsStore,
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true, limits: ['pace'] }],
  }
}

async function hit(gw: TestGateway): Promise<{ status: number; code?: string }> {
  const res = await request(`${gw.url}/r`, { headers: { 'x-client': 'dashboard' } })
  const text = await res.body.text()
  return { status: res.statusCode, ...(res.statusCode === 200 ? {} : { code: (JSON.parse(text) as { code: string }).code }) }
}

describe('a reload to a Redis limits store', () => {
  it('serves limited requests from the new store at once: it has connected before the swap', async () => {
    const gw = await startTestGateway(configWith({ type: 'memory' }))
    closeLater(() => gw.close())
    const answers: Array<{ status: number; code?: string }> = []
    for (let i = 0; i < 6; i++) {
      // A new prefix each time: a new store, a new connection.
      await gw.writeConfig(configWith({ type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('reload-connect'), on_error: 'deny' }))
      expect((await gw.reload()).ok).toBe(true)
      answers.push(await hit(gw))
      await gw.writeConfig(configWith({ type: 'memory' }))
      expect((await gw.reload()).ok).toBe(true)
      answers.push(await hit(gw))
    }
    expect(answers).toEqual(Array.from({ length: 12 }, () => ({ status: 200 })))
  })

  it('to a Redis that is down waits at most the connect timeout, then on_error answers', async () => {
    const gw = await startTestGateway(configWith({ type: 'memory' }))
    closeLater(() => gw.close())
    // Nothing listens on port 1: every connect is refused, and the client keeps retrying.
    await gw.writeConfig(configWith({ type: 'redis', url: 'redis://127.0.0.1:1', prefix: uniquePrefix('reload-down'), on_error: 'deny' }))
    const started = Date.now()
    expect((await gw.reload()).ok).toBe(true)
    const took = Date.now() - started
    expect(took).toBeGreaterThanOrEqual(900) // the refusals did not end the wait (timeout 500ms: a 1 s connect timeout)
    expect(took).toBeLessThan(5_000)
    expect(await hit(gw)).toEqual({ status: 503, code: 'limits_unavailable' })
  })

  it('keeps its store and connection when only on_error changes', async () => {
    const store = { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('reload-on-error') }
    const gw = await startTestGateway(configWith({ ...store, on_error: 'allow' }))
    closeLater(() => gw.close())
    await waitFor(() => gw.state.runtime.limiter.store.status() === 'ready', 'redis')
    const first = gw.state.runtime.limiter.store
    for (const onError of ['deny', 'allow', 'deny'] as const) {
      await gw.writeConfig(configWith({ ...store, on_error: onError }))
      expect((await gw.reload()).ok).toBe(true)
      expect(gw.state.runtime.limiter.store).toBe(first)
      expect(gw.state.runtime.limiter.onError).toBe(onError)
      expect(await hit(gw)).toEqual({ status: 200 })
    }
  })
})

describe('a gateway started on a Redis limits store', () => {
  it('serves its first limited requests from the store: it has connected before the gateway listens', async () => {
    const answers: Array<{ status: number; code?: string }> = []
    for (let i = 0; i < 3; i++) {
      const gw = await startTestGateway(configWith({ type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('start-connect'), on_error: 'deny' }))
      closeLater(() => gw.close())
      answers.push(await hit(gw))
    }
    expect(answers).toEqual(Array.from({ length: 3 }, () => ({ status: 200 })))
  })
})
