// One undici keep-alive pool per upstream. A reload reuses the pool of every upstream whose
// settings did not change, so warm sockets and the in-flight count survive it; pools no longer
// used are closed once their requests finish.
import { Pool } from 'undici'
import { createSharedResources, type SharedResources } from '../collections/index.ts'
import type { UpstreamConfig } from '../config/index.ts'
import { foldHeaderName } from '../http/index.ts'

export interface Upstream {
  readonly name: string
  readonly origin: string
  /** The URL's path without a trailing slash ('' for none): prefixed to every forwarded path. */
  readonly basePath: string
  readonly pool: Pool
  readonly maxConcurrent: number
  readonly timeoutMs: number
  readonly identityAssertion: boolean
  /** Configured header templates, possibly holding `${secret:NAME}`. */
  readonly headerTemplates: ReadonlyArray<readonly [name: string, template: string]>
  /** Folded names of the configured headers: a client header that folds to one of them is dropped. */
  readonly headerNames: ReadonlySet<string>
  /** Resolved configured headers as a flat [name, value, …] list; replaced when a secret rotates. */
  headers: string[]
  inFlight: number
}

export type UpstreamRegistry = SharedResources<UpstreamConfig, Upstream>

/** Upstreams live as long as their settings: a reload keeps the pool (warm sockets, in-flight count) of one that did not change. */
export function createUpstreamRegistry(): UpstreamRegistry {
  return createSharedResources({ fingerprint: (config) => JSON.stringify(config), create: createUpstream, close: (upstream) => upstream.pool.close() })
}

function createUpstream(config: UpstreamConfig): Upstream {
  const url = new URL(config.url)
  const headerTemplates = Object.entries(config.headers).map(([name, value]) => [name.toLowerCase(), value] as const)
  return {
    name: config.name,
    origin: url.origin,
    basePath: url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, ''),
    pool: new Pool(url.origin, {
      connections: config.max_connections,
      connect: { timeout: config.connect_timeout },
      headersTimeout: config.timeout,
      bodyTimeout: config.timeout,
      keepAliveTimeout: 4_000,
      pipelining: 1,
    }),
    maxConcurrent: config.max_concurrent ?? Number.POSITIVE_INFINITY,
    timeoutMs: config.timeout,
    identityAssertion: config.identity_assertion,
    headerTemplates,
    headerNames: new Set(headerTemplates.map(([name]) => foldHeaderName(name))),
    headers: headerTemplates.flatMap(([name, value]) => [name, value]),
    inFlight: 0,
  }
}
