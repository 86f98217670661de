// Config → the frozen runtime one request reads: a router whose routes carry their backend (the
// upstream, or a built-in endpoint), per-route settings resolved to objects, upstream pools. A reload
// compiles a new runtime and swaps one reference; requests in flight keep the runtime they started with.
import type { X509Certificate } from 'node:crypto'
import { compileAccess, type AccessControl, type RoutePolicy } from '../access/index.ts'
import { addressSet, jwtIssuers, parseRoutePattern, readCertificates, x509Issuers, type AcceptedCredential, type AddressSet, type Config, type RoutePattern } from '../config/index.ts'
import { bearerVerifier, clientCertVerifier, createAuthenticator, createIssuerRegistry, createTokenVerifier, type Authenticator, type CredentialVerifier, type IssuerKeys, type IssuerRegistry, type KeyLoading, type KeySetEvents } from '../identity/index.ts'
import { compileRouteLimits, createLimitsStoreRegistry, type Limiter, type LimitsStoreRegistry, type RouteLimits } from '../limits/index.ts'
import type { Backend } from '../request/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { createUpstreamRegistry, upstreamBackend, type Upstream, type UpstreamRegistry } from '../upstream/index.ts'
import { builtInRoutes, type BuiltInSources } from './built-ins.ts'
import { createRouter, type RoutableRoute, type Router } from './router.ts'

export interface CompiledRoute extends RoutableRoute {
  readonly id: string
  readonly public: boolean
  /** The credentials it takes, in the order they are tried (routes[].accept). */
  readonly accept: readonly AcceptedCredential[]
  readonly websocket: boolean
  /** The route's limits, compiled (null when it has none). */
  readonly limits: RouteLimits | null
  /** The statements that can apply here, per role; undefined when no policy names the route. */
  readonly policy: RoutePolicy | undefined
  /** What serves the request: the route's upstream, or a built-in endpoint. */
  readonly backend: Backend
  /** The upstream X-Bouncer-Assertion is addressed to, when that upstream asks for one. */
  readonly assertionAudience: string | null
}

export interface Runtime {
  readonly generation: number
  readonly config: Config
  readonly router: Router<CompiledRoute>
  readonly upstreams: ReadonlyMap<string, Upstream>
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>
  /** Turns a request's credential into an Identity, for the kinds each route accepts. */
  readonly authenticator: Authenticator
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
  builtIns: BuiltInSources
}

/** Sets every upstream's configured headers from their templates, with the current secret values. */
export function applyUpstreamHeaders(upstreams: ReadonlyMap<string, Upstream>, resolve: (template: string) => string): void {
  for (const upstream of upstreams.values()) {
    upstream.headers = upstream.headerTemplates.flatMap(([name, template]) => [name, resolve(template)])
  }
}

const NO_KEYS: BuiltInSources = { publishedKeys: () => ({ keys: [] }) }

/**
 * The long-lived registries a runtime draws from. `offline`: no key fetches, no Redis (explain);
 * otherwise `background` runs the key loads. `builtIns`: what the gateway's own endpoints read
 * (by default, no published keys).
 */
export function createRuntimeDeps(
  logger: Logger,
  options: KeyLoading & { keySetEvents?: KeySetEvents; builtIns?: BuiltInSources },
): CompileDeps & { closeAll(): Promise<void> } {
  const upstreams = createUpstreamRegistry()
  const issuers = createIssuerRegistry(logger, options.keySetEvents ?? { refreshed() {}, failed() {} }, options)
  const limitsStores = createLimitsStoreRegistry(logger, options)
  return {
    upstreams,
    issuers,
    limitsStores,
    logger,
    builtIns: options.builtIns ?? NO_KEYS,
    async closeAll() {
      await Promise.all([issuers.closeAll(), upstreams.closeAll(), limitsStores.closeAll()])
    },
  }
}

const BEARER_ONLY: readonly AcceptedCredential[] = Object.freeze(['bearer'])

let generations = 0

/** Assumes a config that passed `loadConfig` (no errors): compile does not re-validate. */
export function compileRuntime(config: Config, deps: CompileDeps): Runtime {
  const upstreams = new Map(config.upstreams.map((upstream) => [upstream.name, deps.upstreams.acquire(upstream)]))
  const issuerKeys = new Map(jwtIssuers(config).map((issuer) => [issuer.name, deps.issuers.acquire(issuer)]))
  const access = compileAccess(config)
  const routes: CompiledRoute[] = builtInRoutes(deps.builtIns).map((route, index) => Object.freeze({
    index,
    id: route.id,
    pattern: mustParse(route.path),
    methods: new Set(route.methods),
    pathParams: false,
    public: true,
    accept: BEARER_ONLY,
    websocket: false,
    limits: null,
    policy: undefined,
    backend: route.backend,
    assertionAudience: null,
  }))
  const first = routes.length
  for (const [index, route] of config.routes.entries()) {
    const upstream = upstreams.get(route.upstream) as Upstream
    routes.push(Object.freeze({
      index: first + index,
      id: route.id,
      pattern: mustParse(route.path),
      methods: new Set<string>(route.methods),
      pathParams: route.path_params,
      public: route.public,
      accept: Object.freeze(route.accept),
      websocket: route.websocket,
      limits: compileRouteLimits(route.limits, config.limits),
      policy: access.policyFor(route.id),
      backend: upstreamBackend({
        upstream,
        rewrite: route.upstream_path === undefined ? null : mustParse(route.upstream_path),
        forwardAuthorization: route.forward_authorization,
        publicHosts: config.server.hosts,
        maxBodyBytes: config.server.max_body_bytes,
      }),
      assertionAudience: upstream.identityAssertion ? upstream.name : null,
    }))
  }
  return Object.freeze({
    generation: ++generations,
    config,
    router: createRouter(routes, { caseSensitive: config.server.case_sensitive_paths }),
    upstreams,
    issuerKeys,
    authenticator: createAuthenticator(credentialVerifiers(config, issuerKeys, deps)),
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

/** One verifier per kind of credential this config can check. */
function credentialVerifiers(config: Config, issuerKeys: ReadonlyMap<string, IssuerKeys>, deps: CompileDeps): Map<AcceptedCredential, CredentialVerifier> {
  const tokens = createTokenVerifier({
    issuers: jwtIssuers(config),
    keys: issuerKeys,
    maxTokenBytes: config.server.max_token_bytes,
    cacheEntries: config.server.token_cache_entries,
    logger: deps.logger,
  })
  const verifiers = new Map<AcceptedCredential, CredentialVerifier>([['bearer', bearerVerifier(tokens)]])
  const certificateIssuers = x509Issuers(config)
  if (certificateIssuers.length > 0) {
    verifiers.set('client_cert', clientCertVerifier(certificateIssuers.map((issuer) => ({
      name: issuer.name,
      cas: mustReadCertificates(issuer.ca ?? config.server.tls?.client_ca ?? ''),
    }))))
  }
  return verifiers
}

/** `bouncer check` read the file already; one replaced since then is refused here instead. */
function mustReadCertificates(path: string): X509Certificate[] {
  const read = readCertificates(path)
  if (!read.ok) throw new Error(`an x509 issuer's CA file changed since the config was checked: ${read.message}`)
  return read.certificates
}

function mustParse(path: string): RoutePattern {
  const parsed = parseRoutePattern(path)
  if (!parsed.ok) throw new Error(`route pattern passed validation but does not parse: ${parsed.message}`)
  return parsed.value
}
