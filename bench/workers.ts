// server.workers: the bare proxy with 1 and with 2 request-path workers (issue 15, point 5). Both
// gateways are left unpinned, so they may use both cores: on this 2-core machine wrk (core 0) and
// the upstream (core 1) share those cores with them, so "2 workers" cannot double anything here —
// the table says what one more worker buys on a host whose cores are already busy with the load
// generator and the upstream. CPU µs per request is the whole gateway process (every thread).
// A third case, run when named in --cases, adds a memory-store limit on every request: both workers
// take from the shared table.
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
        ...(limited ? { limits: [{ name: 'per-ip', key: 'ip', rate: '100000/s' }] } : {}),
        upstreams: [{ name: 'api', url: `http://127.0.0.1:${ctx.upstreamPort}`, max_connections: 64 }],
        routes: [{ id: 'all', path: '/*', upstream: 'api', public: true, ...(limited ? { limits: ['per-ip'] } : {}) }],
      }, {}, { core: null, startTimeoutMs: 120_000 }) // N isolates each load the whole gateway: slow on a busy machine
      return { url: `${gateway.url}/`, measured: gateway, stop: () => gateway.stop() }
    },
  }
}

export const WORKER_CASES: BenchCase[] = [workersCase(1, false), workersCase(2, false)]
/** Run only when named in --cases (a third multi-isolate start is slow on a busy machine, and the quick run has a budget). */
export const OPT_IN_WORKER_CASES: BenchCase[] = [workersCase(2, true)]
