// Case (d)'s gateway: the whole pipeline. A verified ES256 token from the bench issuer, three roles
// held at once, N policy statements over M routes (the request matches one in the middle), a
// per-principal rate limit too high to refuse, the SQLite audit sink, and a traceparent continued.
import { join } from 'node:path'
import { BENCH_AUDIENCE } from './issuer.ts'

export interface PipelineShape {
  routes: number
  statements: number
  issuer: string
  upstreamPort: number
  /** Where the SQLite audit log and its spill directory go. */
  dir: string
}

export const PIPELINE_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

/** The config, and the path of a request that matches a route in the middle of the file. */
export function pipelineConfig(shape: PipelineShape): { config: Record<string, unknown>; path: string } {
  const routes = Array.from({ length: shape.routes }, (_, i) => ({
    id: `svc${i % 50}.r${i}`,
    methods: ['GET', 'HEAD', 'DELETE'],
    path: `/svc${i % 50}/r${i}/:id`,
    upstream: 'api',
    upstream_path: '/',
    limits: ['per-principal'],
  }))
  const target = Math.floor(shape.routes / 2)
  const targetRoute = routes[target] as { id: string }
  const policies = [0, 1, 2].map((p) => ({ name: `policy-${p}`, statements: [] as Array<Record<string, unknown>> }))
  // One statement allows the target route; the rest cover other routes, one in five a deny.
  policies[0]?.statements.push({ sid: 'AllowTarget', effect: 'allow', actions: ['GET', 'HEAD'], routes: [targetRoute.id] })
  for (let s = 1; s < shape.statements; s++) {
    const route = (routes[(target + s) % shape.routes] as { id: string }).id
    const deny = s % 5 === 4
    policies[s % 3]?.statements.push({ sid: `S${s}`, effect: deny ? 'deny' : 'allow', actions: deny ? ['DELETE'] : ['GET', 'HEAD'], routes: [route] })
  }
  return {
    path: `/svc${target % 50}/r${target}/42`,
    config: {
      issuers: [{ name: 'bench', issuer: shape.issuer, audiences: [BENCH_AUDIENCE], algorithms: ['ES256'] }],
      roles: [0, 1, 2].map((p) => ({ name: `role-${p}`, assumed_by: [{ issuer: 'bench', subject: 'svc-*' }], policies: [`policy-${p}`] })),
      policies: policies.filter((p) => p.statements.length > 0),
      limits: [{ name: 'per-principal', key: 'principal', rate: '100000/s', burst: 1_000_000 }],
      limits_store: { type: 'memory', max_keys: 200_000 },
      upstreams: [{ name: 'api', url: `http://127.0.0.1:${shape.upstreamPort}`, max_connections: 64 }],
      routes,
      audit: { sinks: [{ type: 'sqlite', path: join(shape.dir, 'audit.db') }], spill_dir: join(shape.dir, 'spill') },
    },
  }
}
