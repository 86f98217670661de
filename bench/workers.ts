// server.workers: the bare proxy with 1 and with 2 request-path workers (issue 15, point 5). Both
// gateways are left unpinned, so they may use both cores: on this 2-core machine wrk (core 0) and
// the upstream (core 1) share those cores with them, so "2 workers" cannot double anything here —
// the table says what one more worker buys on a host whose cores are already busy with the load
// generator and the upstream. CPU µs per request is the whole gateway process (every thread).
// A third case adds a memory-store limit on every request, to show what the shared table's lock
// costs when two workers take from it.
import type { BenchCase } from './cases.ts'
import { startBouncer } from './cases.ts'

function workersCase(workers: number, limited: boolean): BenchCase {
  return {
    id: `bouncer-workers-${workers}${limited ? '-limit' : ''}`,
    group: 'main',
    title: `(c) bare proxy, ${workers} worker${workers === 1 ? '' : 's'}${limited ? ' + a memory-store limit' : ''}, unpinned (wrk and the upstream share the 2 cores)`,
    async start(ctx) {
      const gateway = await startBouncer({
        server: { listen: '127.0.0.1:0', workers },
        audit: { sinks: [] },
        ...(limited ? { limits: [{ name: 'per-ip', key: 'ip', rate: '1000000/s' }] } : {}),
        upstreams: [{ name: 'api', url: `http://127.0.0.1:${ctx.upstreamPort}`, max_connections: 64 }],
        routes: [{ id: 'all', path: '/*', upstream: 'api', public: true, ...(limited ? { limits: ['per-ip'] } : {}) }],
      }, {}, { core: null, startTimeoutMs: 120_000 }) // N isolates each load the whole gateway: slow on a busy machine
      return { url: `${gateway.url}/`, measured: gateway, stop: () => gateway.stop() }
    },
  }
}

export const WORKER_CASES: BenchCase[] = [workersCase(1, false), workersCase(2, false), workersCase(2, true)]
