// The stdout sink behind a reader slower than the gateway (a log shipper that falls behind): its
// pipe is non-blocking, so a full pipe made writeSync throw EAGAIN, often after part of a batch had
// gone; the batch was spilled and replayed whole, again at every retry. Every record must reach the
// reader once, as a whole line.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { serveConfig } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
beforeAll(async () => {
  upstream = await startUpstream((_req, res) => {
    res.end('ok')
  })
})
afterAll(async () => {
  await upstream.close()
})

it('a reader that falls behind gets every record once, whole', async () => {
  const gw = await serveConfig((dir) => ({
    audit: { sinks: [{ type: 'stdout' }], spill_dir: `${dir}/spill`, flush_interval: '200ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
  }))
  // The shipper stops reading: ~1 MB of records (2.5 KB each) against a 64 KB pipe.
  gw.child.stdout?.pause()
  const N = 400
  const long = 'x'.repeat(1500)
  for (let start = 0; start < N; start += 50) {
    await Promise.all(Array.from({ length: 50 }, async (_, k) => {
      const res = await request(`${gw.url}/out/${start + k}/${long}`, { headers: { 'x-request-id': `out-${start + k}` } })
      await res.body.dump()
      expect(res.statusCode).toBe(200)
    }))
  }
  gw.child.stdout?.resume()
  const ids = () => gw.stdout().split('\n').filter((line) => line.startsWith('{')).flatMap((line) => {
    try {
      return [(JSON.parse(line) as { request_id: string }).request_id]
    } catch {
      return ['(not a whole line)']
    }
  })
  // Bounded: until every request's record has come, or 15 s.
  for (const deadline = Date.now() + 15_000; Date.now() < deadline && new Set(ids()).size < N;) await new Promise((r) => setTimeout(r, 50))
  expect(await gw.stop()).toBe(0)
  const seen = ids()
  expect(seen.filter((id) => id === '(not a whole line)')).toEqual([])
  expect(seen.length).toBe(N)
  expect(new Set(seen).size).toBe(N)
}, 30_000)

it('a reader that stops does not hold durability: sync answers', async () => {
  const gw = await serveConfig((dir) => ({
    audit: { sinks: [{ type: 'stdout' }], spill_dir: `${dir}/spill`, durability: 'sync' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
  }))
  gw.child.stdout?.pause()
  const long = 'x'.repeat(1500)
  // Far past the pipe: each answer waits for its record, written or spilled.
  for (let start = 0; start < 200; start += 20) {
    const statuses = await Promise.all(Array.from({ length: 20 }, async (_, k) => {
      const res = await request(`${gw.url}/sync/${start + k}/${long}`, { headersTimeout: 5_000 })
      await res.body.dump()
      return res.statusCode
    }))
    expect(statuses.every((status) => status === 200)).toBe(true)
  }
  gw.child.stdout?.resume()
  expect(await gw.stop()).toBe(0)
}, 30_000)
