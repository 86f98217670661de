// Config → the frozen runtime one request reads: a router, per-route settings resolved to objects,
// upstream pools. A reload compiles a new runtime and swaps one reference; requests in flight keep
// the runtime they started with.
import { addressSet, type AddressSet, type Config, parseRoutePattern, type RoutePattern } from '../config/index.ts'
import { type AccessControl, compileAccess, type RoutePolicy } from '../access/index.ts'
import { createIssuerRegistry, createTokenVerifier, type IssuerKeys, type IssuerRegistry, type KeyLoading, type KeySetEvents, type TokenVerifier } from '../identity/index.ts'
import { compileRouteLimits, createLimitsStoreRegistry, type Limiter, type LimitsStoreRegistry, type RouteLimits } from '../limits/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { createUpstreamRegistry, type Upstream, type UpstreamRegistry } from '../upstream/index.ts'
import { createRouter, type RoutableRoute, type Router } from './router.ts'

export interface CompiledRoute extends RoutableRoute {
  readonly id: string
  readonly upstream: Upstream
  readonly rewrite: RoutePattern | null
  readonly public: boolean
  readonly forwardAuthorization: boolean
  readonly websocket: boolean
  /** The route's limits, compiled (null when it has none). */
  readonly limits: RouteLimits | null
  /** The statements that can apply here, per role; undefined when no policy names the route. */
  readonly policy: RoutePolicy | undefined
}

export interface Runtime {
  readonly generation: number
  readonly config: Config
  readonly router: Router<CompiledRoute>
  readonly routes: readonly CompiledRoute[]
  readonly upstreams: ReadonlyMap<string, Upstream>
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>
  readonly identity: TokenVerifier
  readonly access: AccessControl
  readonly limiter: Limiter
  readonly trustedProxies: AddressSet
  /** Requests in flight on this runtime: its pools are retired only once this reaches 0. */
  readonly usage: { inFlight: number }
}

export interface CompileDeps {
  upstreams: UpstreamRegistry
  issuers: IssuerRegistry
  limitsStores: LimitsStoreRegistry
  logger: Logger
}

/** Sets every upstream's configured headers from their templates, with the current secret values. */
export function applyUpstreamHeaders(upstreams: ReadonlyMap<string, Upstream>, resolve: (template: string) => string): void {
  for (const upstream of upstreams.values()) {
    upstream.headers = upstream.headerTemplates.flatMap(([name, template]) => [name, resolve(template)])
  }
}

/**
 * The long-lived registries a runtime draws from. `offline`: no key fetches, no Redis (explain);
 * otherwise `background` runs the key loads.
 */
export function createRuntimeDeps(
  logger: Logger,
  options: KeyLoading & { keySetEvents?: KeySetEvents },
): CompileDeps & { closeAll(): Promise<void> } {
  const upstreams = createUpstreamRegistry()
  const issuers = createIssuerRegistry(logger, options.keySetEvents ?? { refreshed() {}, failed() {} }, options)
  const limitsStores = createLimitsStoreRegistry(logger, options)
  return {
    upstreams,
    issuers,
    limitsStores,
    logger,
    async closeAll() {
      issuers.closeAll()
      await Promise.all([upstreams.closeAll(), limitsStores.closeAll()])
    },
  }
}

let generations = 0

/** Assumes a config that passed `loadConfig` (no errors): compile does not re-validate. */
export function compileRuntime(config: Config, deps: CompileDeps): Runtime {
  const upstreams = deps.upstreams.acquire(config.upstreams)
  const issuerKeys = deps.issuers.acquire(config.issuers)
  const access = compileAccess(config)
  const routes = config.routes.map((route, index): CompiledRoute => {
    return Object.freeze({
      index,
      id: route.id,
      pattern: mustParse(route.path),
      methods: new Set<string>(route.methods),
      pathParams: route.path_params,
      upstream: upstreams.get(route.upstream) as Upstream,
      rewrite: route.upstream_path === undefined ? null : mustParse(route.upstream_path),
      public: route.public,
      forwardAuthorization: route.forward_authorization,
      websocket: route.websocket,
      limits: compileRouteLimits(route.limits, config.limits),
      policy: access.policyFor(route.id),
    })
  })
  return Object.freeze({
    generation: ++generations,
    config,
    router: createRouter(routes, { caseSensitive: config.server.case_sensitive_paths }),
    routes,
    upstreams,
    issuerKeys,
    identity: createTokenVerifier({
      issuers: config.issuers,
      keys: issuerKeys,
      maxTokenBytes: config.server.max_token_bytes,
      cacheEntries: config.server.token_cache_entries,
      logger: deps.logger,
    }),
    access,
    limiter: {
      store: deps.limitsStores.acquire(config.limits_store),
      onError: config.limits_store.type === 'redis' ? config.limits_store.on_error : 'deny',
      logger: deps.logger,
    },
    trustedProxies: addressSet(config.server.trusted_proxies),
    usage: { inFlight: 0 },
  })
}

function mustParse(path: string): RoutePattern {
  const parsed = parseRoutePattern(path)
  if (!parsed.ok) throw new Error(`route pattern passed validation but does not parse: ${parsed.message}`)
  return parsed.value
}
