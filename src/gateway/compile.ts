// Config → the frozen runtime one request reads: a router whose routes carry their backend (the
// upstream, a function, or a built-in endpoint), per-route settings resolved to objects, upstream
// pools and function pools. A reload
// compiles a new runtime and swaps one reference; requests in flight keep the runtime they started with.
import { randomBytes, type X509Certificate } from 'node:crypto'
import { compileAccess, type AccessControl, type RoutePolicy } from '../access/index.ts'
import { ownIssuerConfig, tokenExchangeEndpoints, type ExchangeEndpoint, type ExchangeKeys } from '../agents/index.ts'
import { addressSet, configDigestOf, CONSOLE_COOKIE, cookieSecureByDefault, crlsByCa, jwtIssuers, parseRoutePattern, reachedOverHttps, readCertificates, readCrls, x509Issuers, type AcceptedCredential, type AddressSet, type Config, type CorsConfig, type IssuerConfig, type RevocationList, type RouteConfig, type RoutePattern } from '../config/index.ts'
import { corsPolicy, foldHeaderName, isManagedVariant, MANAGED_REQUEST_HEADERS, viaEntries, type CorsPolicy, type ViaEntries } from '../http/index.ts'
import {
  apiKeyVerifier, bearerVerifier, clientCertVerifier, createApiKeyDirectoryRegistry, createAuthenticator, createIntrospectorRegistry, createIssuerRegistry, createSessionStoreRegistry, createSignIn, createTokenVerifier, unprovenCredential,
  type SessionStoreRegistry, type SignIn, type ApiKeyDirectory, type ApiKeyDirectoryRegistry, type Authenticator, type CredentialVerifier, type Introspector, type IssuerKeys, type IntrospectorRegistry, type IssuerRegistry, type KeyLoading, type KeySetEvents,
  type OwnTokens, type TokenVerifier, type X509Issuer,
} from '../identity/index.ts'
import { compileDataset, createDatasourceRegistry, datasetBackend, datasetSchemaBackend, type Datasource, type DatasetRoute, type DatasourceRegistry } from '../datasets/index.ts'
import { createFunctionRegistry, functionBackend, routeKeyOf, type FunctionPool, type FunctionRegistry } from '../functions/index.ts'
import { compileRouteLimits, createAuthFailureGuard, createLimitsStoreRegistry, type AuthFailureGuard, type Limiter, type LimitsStoreRegistry, type RouteLimits, type SharedLimitsTable } from '../limits/index.ts'
import { compileMcp, createAgentsRegistry, endedSessions, loadMcpFor, type AgentsRegistry, type CompiledMcp, type McpCompileDeps, type ToolRoute } from '../agents/index.ts'
import type { Backend, HoldBody, InternalDispatch } from '../request/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { createUpstreamRegistry, inFlightCounts, setResolvedHeaders, upstreamBackend, type AssertionSigner, type HealthCheckRole, type SharedInFlight, type Upstream, type UpstreamRegistry } from '../upstream/index.ts'
import { builtInRoutes, type BuiltInSources } from './built-ins.ts'
import { bodyShareHeld } from './form-budget.ts'
import { createRouter, type RoutableRoute, type Router } from './router.ts'

export interface CompiledRoute extends RoutableRoute {
  readonly id: string
  readonly public: boolean
  /** The credentials it takes, in the order they are tried (routes[].accept). */
  readonly accept: readonly AcceptedCredential[]
  readonly websocket: boolean
  /** routes[].cors: the gateway answers preflights and sets the CORS headers (null: no CORS). */
  readonly cors: CorsPolicy | null
  /** The route's limits, compiled (null when it has none). */
  readonly limits: RouteLimits | null
  /** The statements that can apply here, per role; undefined when no policy names the route. */
  readonly policy: RoutePolicy | undefined
  /** What serves the request: the route's upstream, its function, or a built-in endpoint. */
  readonly backend: Backend
  /** The upstream X-Bouncer-Assertion is addressed to, when that upstream asks for one. */
  readonly assertionAudience: string | null
  /** The upstream's configured headers (flat [name, value, …]) as they are now; null for a built-in endpoint. */
  readonly upstreamHeaders: (() => readonly string[]) | null
  /** Forward-auth: the stages decide for the request a trusted proxy describes (pipeline.ts). */
  readonly forwardAuth: boolean
}

export interface Runtime {
  /**
   * Which of the gateway's configs this is: 1 at start, one more with each reload it took (a
   * reload's prepare is given it; under server.workers the primary gives every worker the same,
   * a replacement too). 0 for a config compiled only to be read (a replay's draft, `bouncer explain`).
   */
  readonly generation: number
  readonly config: Config
  /**
   * SHA-256 of the checked config (hex, 16 characters): what tells whether every worker, or every
   * instance, runs the same one (/readyz, bouncer_config_workers).
   */
  readonly configDigest: string
  readonly router: Router<CompiledRoute>
  readonly upstreams: ReadonlyMap<string, Upstream>
  /** Each function's pool of workers. */
  readonly functions: ReadonlyMap<string, FunctionPool>
  /** Each datasource of the datasets (its pool, or its SQLite file). */
  readonly datasources: ReadonlyMap<string, Datasource>
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>
  /** Turns a request's credential into an Identity, for the kinds each route accepts. */
  readonly authenticator: Authenticator
  /** The x509 issuers and the CAs each vouches for, as the client_cert verifier reads them (explain maps a recorded CA back to its issuer). */
  readonly certificateIssuers: readonly X509Issuer[]
  /** server.tls.client_crl's CRLs as one string (their signatures): open tunnels' certificates are checked again when it changes. */
  readonly certificateRevocations: string
  /** The issuer that introspects opaque tokens, if one does (its client secret is set from the secrets store). */
  readonly introspection: Introspector | null
  /** The API keys (api_keys), when configured. */
  readonly apiKeys: ApiKeyDirectory | null
  /** Browser sign-in and its sessions (sign_in), when configured. */
  readonly signIn: SignIn | null
  /** Sign-in to the console on the admin listener (admin.roles / admin.read_roles): the same provider and store, its own cookie. */
  readonly consoleSignIn: SignIn | null
  readonly access: AccessControl
  readonly limiter: Limiter
  /** auth_failures: addresses whose credentials keep failing are held back before authentication. */
  readonly authFailures: AuthFailureGuard | null
  readonly trustedProxies: AddressSet
  /** Who may ask /.bouncer/auth (server.forward_auth_peers). */
  readonly forwardAuthPeers: AddressSet
  /**
   * server.forwarded_client_cert's fields that the managed headers do not already remove (names other
   * than RFC 9440's): never forwarded, whoever sent them. Null when there are none.
   */
  readonly unmanagedCertFields: ReadonlySet<string> | null
  /** Requests in flight on this runtime: its pools are retired only once this reaches 0. */
  readonly usage: { inFlight: number }
  /** The MCP endpoint (mcp), when configured. */
  readonly mcp: CompiledMcp | null
  /** This config's signers, set by prepare before the swap: a request signs with its own runtime's, whatever a later reload sets. */
  readonly signing: RuntimeSigning
  /** The credential names this runtime withholds from upstreams: the process's until now, and its own (putInForce). */
  readonly credentialNames: CredentialNames
}

/** Session cookie names (sign_in's and the console's) and API key headers (folded). */
export interface CredentialNames {
  readonly sessionCookies: ReadonlySet<string>
  readonly apiKeyHeaders: ReadonlySet<string>
}

/**
 * A runtime that serves (at start, at a reload's commit): what it changes in the process's shared
 * state takes effect only now. Its MCP endpoint takes its path's sessions; its credential names
 * join the process's, withheld by every later config (a rename keeps the old name withheld); its
 * sign_in.session.idle becomes the session store's. At compile, a refused reload's names were
 * withheld from upstreams until a restart, and its shorter idle timeout ended sessions for good
 * (the store keeps a shortened timeout's cutoff).
 */
export function putInForce(deps: CompileDeps, runtime: Runtime): void {
  runtime.mcp?.takeSessions()
  for (const name of runtime.credentialNames.sessionCookies) deps.sessionCookieNames.add(name)
  for (const name of runtime.credentialNames.apiKeyHeaders) deps.apiKeyHeaders.add(name)
  const session = runtime.config.sign_in?.session
  if (session) runtime.signIn?.store.idle.set(session.idle)
}

/** The keys a runtime signs with: X-Bouncer-Assertion, and the tokens POST /oauth2/token issues. */
export interface RuntimeSigning {
  /** null unless an upstream asks for identity assertions. */
  assertions: AssertionSigner | null
  /** null unless token_exchange is enabled. */
  exchangeKeys: ExchangeKeys | null
}

export interface CompileDeps {
  upstreams: UpstreamRegistry
  functions: FunctionRegistry
  datasources: DatasourceRegistry
  issuers: IssuerRegistry
  /** The introspecting issuer's answers, kept across reloads that leave its settings alone. */
  introspectors: IntrospectorRegistry
  limitsStores: LimitsStoreRegistry
  apiKeys: ApiKeyDirectoryRegistry
  sessionStores: SessionStoreRegistry
  /**
   * Every name sign_in.cookie.name has had in a config that served in this process, and the
   * console's cookie once a config with the console's sign-in served: a reload that renames the
   * cookie, or removes sign_in, keeps withholding the old one from upstreams (putInForce).
   */
  sessionCookieNames: Set<string>
  /** Every api_keys.header a config that served in this process has had, folded: a reload's rename keeps withholding the old one. */
  apiKeyHeaders: Set<string>
  logger: Logger
  builtIns: BuiltInSources
  agents: AgentsRegistry
  /** The Via entries the gateway adds to what it forwards: the process's, every worker's (viaEntries). */
  via: ViaEntries
}

/**
 * Puts the current secret values where the config references them: every upstream's configured
 * headers, the introspecting issuer's client secret, each function's environment. At compile and
 * after every refresh. `held`: objects runtimes that serve share with this one (heldResources),
 * left as they are: a reload's prepare wrote the new config's values into them before its commit,
 * and live requests sent them (its commit applies them, at the swap).
 */
export function applySecretValues(runtime: Runtime, resolve: (template: string) => string, held?: ReadonlySet<object>): void {
  const own = (resource: object) => held === undefined || !held.has(resource)
  for (const upstream of runtime.upstreams.values()) {
    if (own(upstream)) setResolvedHeaders(upstream, resolve)
  }
  for (const source of runtime.datasources.values()) if (own(source)) source.applySecrets(resolve)
  if (runtime.introspection && own(runtime.introspection)) runtime.introspection.clientSecret = resolve(runtime.introspection.issuer.introspection.client_secret)
  // Each compile's own: never shared.
  const signInSecret = runtime.config.sign_in?.client_secret
  if (signInSecret !== undefined) {
    if (runtime.signIn) runtime.signIn.clientSecret = resolve(signInSecret)
    if (runtime.consoleSignIn) runtime.consoleSignIn.clientSecret = resolve(signInSecret)
  }
  runtime.mcp?.applySecrets(resolve, own)
  for (const pool of runtime.functions.values()) if (own(pool)) pool.applySecrets(resolve)
}

/** What these runtimes hold that a later compile may share (registries give equal settings one object): secret values go in them. */
export function heldResources(runtimes: Iterable<Runtime>): Set<object> {
  const held = new Set<object>()
  for (const runtime of runtimes) {
    for (const upstream of runtime.upstreams.values()) held.add(upstream)
    for (const source of runtime.datasources.values()) held.add(source)
    for (const pool of runtime.functions.values()) held.add(pool)
    if (runtime.introspection) held.add(runtime.introspection)
    for (const server of runtime.mcp?.servers ?? []) held.add(server)
  }
  return held
}

const NO_KEYS: BuiltInSources = { publishedKeys: () => ({ keys: [] }) }

/**
 * The long-lived registries a runtime draws from. `offline`: no key fetches, no Redis (explain);
 * otherwise `background` runs the key loads. `builtIns`: what the gateway's own endpoints read
 * (by default, no published keys).
 */
export function createRuntimeDeps(
  logger: Logger,
  options: KeyLoading & { keySetEvents?: KeySetEvents; builtIns?: BuiltInSources; sharedLimits?: SharedLimitsTable; apiKeyRevocations?: SharedArrayBuffer; keyWithdrawals?: SharedArrayBuffer; mcpSessionKey?: string; mcpEndedSessions?: SharedArrayBuffer; upstreamInFlight?: SharedInFlight; datasetKey?: string; viaToken?: string; healthChecks?: HealthCheckRole },
): CompileDeps & { closeAll(): Promise<void> } {
  const inFlight = inFlightCounts(options.upstreamInFlight, (name) => logger.warn({ upstream: name }, 'the workers\' table of upstream names is full: this upstream\'s max_concurrent holds in each worker alone'))
  const upstreams = createUpstreamRegistry({ logger, background: options.offline ? null : options.background, healthChecks: options.healthChecks ?? 'alone', inFlight })
  const functions = createFunctionRegistry(logger, options)
  const datasources = createDatasourceRegistry(logger, options)
  const issuers = createIssuerRegistry(logger, options.keySetEvents ?? { refreshed() {}, failed() {} }, options, options.keyWithdrawals)
  const introspectors = createIntrospectorRegistry()
  const limitsStores = createLimitsStoreRegistry(logger, options)
  const apiKeys = createApiKeyDirectoryRegistry(logger, options, options.apiKeyRevocations)
  const sessionStores = createSessionStoreRegistry(logger, options)
  const agents = createAgentsRegistry(logger, options.mcpSessionKey, options.mcpEndedSessions ? endedSessions(options.mcpEndedSessions) : undefined)
  return {
    upstreams,
    functions,
    datasources,
    issuers,
    introspectors,
    limitsStores,
    apiKeys,
    sessionStores,
    sessionCookieNames: new Set(),
    apiKeyHeaders: new Set(),
    logger,
    builtIns: options.builtIns ?? NO_KEYS,
    agents,
    // Offline (explain, replay) nothing is forwarded: a token of its own.
    via: viaEntries(options.viaToken ?? randomBytes(9).toString('base64url')),
    async closeAll() {
      await Promise.all([issuers.closeAll(), introspectors.closeAll(), upstreams.closeAll(), functions.closeAll(), datasources.closeAll(), limitsStores.closeAll(), apiKeys.closeAll(), sessionStores.closeAll(), agents.closeAll()])
    },
  }
}

const BEARER_ONLY: readonly AcceptedCredential[] = Object.freeze(['bearer'])

/** Loads what compileRuntime needs for this config that a gateway without it never loads (the MCP SDK): await it first. */
export function loadModulesFor(config: Config): Promise<void> {
  return loadMcpFor(config)
}

/** Assumes a config that passed `loadConfig` (no errors), and loadModulesFor(config) awaited: compile does not re-validate. */
/**
 * `generation`: the gateway's count of its configs (Runtime.generation). It was a counter of this
 * thread's compiles: a replay's draft and a reload staged then aborted moved one worker's, a
 * replacement worker began again at 1, and two workers on one config said two generations.
 * `clientCrls`: server.tls.client_crl's CRLs as the caller read them for the handshake (a reload's
 * TLS material), so that the handshake and the certificate checks here hold one file's; else read here.
 */
export function compileRuntime(config: Config, deps: CompileDeps, generation = 0, clientCrls?: readonly RevocationList[]): Runtime {
  const upstreams = new Map(config.upstreams.map((upstream) => [upstream.name, deps.upstreams.acquire(upstream)]))
  const functions = new Map(config.functions.map((fn) => [fn.name, deps.functions.acquire(fn)]))
  const datasources = new Map(config.datasources.map((source) => [source.name, deps.datasources.acquire(source)]))
  const issuerKeys = new Map(jwtIssuers(config).filter(verifiesJwts).map((issuer) => [issuer.name, deps.issuers.acquire(issuer)]))
  const apiKeys = config.api_keys ? deps.apiKeys.acquire(config.api_keys) : null
  // The API key header is the gateway's credential: no upstream ever gets it, nor the names it had
  // before a reload renamed it (clients not yet changed still send their key under the old one,
  // and it went on to the upstream as an ordinary header: a probe), as with the session cookie.
  const withheldHeaders = new Set(deps.apiKeyHeaders)
  if (config.api_keys) withheldHeaders.add(foldHeaderName(config.api_keys.header.toLowerCase()))
  // Copies: the process's sets take this config's names only once it serves (putInForce).
  const sessionCookies = new Set(deps.sessionCookieNames)
  const signIn = compileSignIn(config, issuerKeys, deps, sessionCookies)
  const consoleSignIn = compileConsoleSignIn(config, issuerKeys, deps, sessionCookies)
  // The session cookies are the gateway's credential: no upstream ever gets them. The console's
  // too: a cookie is not kept to its port, so a browser sends it to the gateway on the same host.
  // And those of the names the gateway's had before (a rename): browsers send an old cookie, a live
  // session's, until it expires. Every name the process has known stays withheld when a reload
  // removes sign_in (or the console's sign-in): the cookies went upstream from then on, live
  // sessions' credentials in a store the next sign_in opens again (the sessions probe).
  const withheldCookies: ReadonlySet<string> = new Set([...sessionCookies, ...[signIn, consoleSignIn].flatMap((s) => (s ? [s.cookieName, ...s.formerCookieNames] : []))].flatMap((name) => [name, `${name}_state`]))
  const access = compileAccess(config)
  // Filled by prepare (instance/prepare.ts) once the secrets are read, before the runtime serves.
  const signing: RuntimeSigning = { assertions: null, exchangeKeys: null }
  const limiter: Limiter = {
    store: deps.limitsStores.acquire(config.limits_store),
    onError: config.limits_store.type === 'redis' ? config.limits_store.on_error : 'deny',
    logger: deps.logger,
  }
  const authFailures = config.auth_failures ? createAuthFailureGuard(config.auth_failures, limiter, unprovenCredential) : null
  // The body a function's or the MCP endpoint's request reads whole takes its share, as a form's does.
  const holdBody: HoldBody = (ctx, maxBytes) => bodyShareHeld(ctx, maxBytes, config.server.form_body_total_bytes)
  const mcp = config.mcp ? compileMcp(config, config.mcp, mcpDeps(config, access, issuerKeys, signing, limiter, authFailures, deps, holdBody)) : null
  const { tokens, ...verifiers } = credentials(config, issuerKeys, apiKeys, signIn, signing, deps, clientCrls)
  const routes: CompiledRoute[] = [...builtInRoutes(deps.builtIns, exchangeEndpoints(config, tokens, access, signing, authFailures), signIn), ...(mcp?.routes ?? [])].map((route, index) => Object.freeze({
    index,
    id: route.id,
    pattern: mustParse(route.path),
    methods: new Set(route.methods),
    pathParams: false,
    public: true,
    accept: BEARER_ONLY,
    websocket: false,
    cors: ('cors' in route ? route.cors : null) ?? null,
    limits: null,
    policy: undefined,
    backend: route.backend,
    assertionAudience: null,
    upstreamHeaders: null,
    forwardAuth: 'forwardAuth' in route && route.forwardAuth === true,
  }))
  for (const route of config.routes) {
    const upstream = route.upstream === undefined ? null : (upstreams.get(route.upstream) as Upstream)
    routes.push(Object.freeze({
      index: routes.length,
      id: route.id,
      pattern: mustParse(route.path),
      methods: new Set<string>(route.methods),
      pathParams: route.path_params,
      public: route.public,
      accept: Object.freeze(route.accept),
      websocket: route.websocket,
      cors: route.cors ? corsOf(route.cors) : null,
      limits: compileRouteLimits(route.limits, config.limits),
      policy: access.policyFor(route.id),
      backend: route.dataset ? routeDataset(route, datasources) : upstream === null ? routeFunction(route, functions, config, withheldHeaders, withheldCookies, holdBody) : upstreamBackend({
        upstream,
        rewrite: route.upstream_path === undefined ? null : mustParse(route.upstream_path),
        forwardAuthorization: route.forward_authorization,
        publicHosts: config.server.hosts,
        maxBodyBytes: config.server.max_body_bytes,
        responseBuffer: { perResponse: config.server.response_buffer_bytes, total: config.server.response_buffer_total_bytes },
        withheldHeaders,
        withheldCookies,
        ownsCors: route.cors !== undefined,
        websocketIdleMs: route.websocket ? (config.server.websocket_idle_timeout ?? null) : null,
        via: deps.via,
      }),
      assertionAudience: upstream?.identityAssertion ? upstream.name : null,
      // Read at each decision: a rotated secret replaces the upstream's headers in place.
      upstreamHeaders: upstream === null ? null : () => upstream.headers,
      forwardAuth: false,
    }))
    if (route.dataset) routes.push(datasetSchemaRoute(routes.at(-1) as CompiledRoute, routes.length))
  }
  return Object.freeze({
    generation,
    config,
    configDigest: configDigestOf(config),
    router: createRouter(routes, { caseSensitive: config.server.case_sensitive_paths }),
    upstreams,
    functions,
    datasources,
    issuerKeys,
    ...verifiers,
    apiKeys,
    signIn,
    consoleSignIn,
    access,
    limiter,
    authFailures,
    trustedProxies: addressSet(config.server.trusted_proxies),
    forwardAuthPeers: addressSet(config.server.forward_auth_peers),
    unmanagedCertFields: unmanagedCertFields(config),
    usage: { inFlight: 0 },
    mcp,
    signing,
    credentialNames: { sessionCookies, apiKeyHeaders: withheldHeaders },
  })
}

const NO_DISPATCH: InternalDispatch = () => Promise.reject(new Error('MCP tool calls run once the gateway listens'))

/** What the MCP endpoint needs from this compile: keys, access, the routes its tools name, the pipeline to call. */
function mcpDeps(config: Config, access: AccessControl, issuerKeys: ReadonlyMap<string, IssuerKeys>, signing: RuntimeSigning, limiter: Limiter, authFailures: AuthFailureGuard | null, deps: CompileDeps, holdBody: HoldBody): McpCompileDeps {
  const routes = new Map<string, ToolRoute>(config.routes.map((route) => [route.id, {
    id: route.id, methods: route.methods, pattern: mustParse(route.path), public: route.public, policy: access.policyFor(route.id),
    limits: compileRouteLimits(route.limits, config.limits), dataset: route.dataset ?? null,
  }]))
  const builtIns = deps.builtIns
  return {
    issuerKeys,
    keyRemovalCount: deps.issuers.keyRemovalCount,
    own: ownTokens(config, signing),
    access,
    routes,
    limiter,
    authFailures,
    dispatch: (request: Parameters<InternalDispatch>[0]) => (builtIns.dispatch ?? NO_DISPATCH)(request),
    audit: (facts: Parameters<NonNullable<BuiltInSources['audit']>>[0]) => builtIns.audit?.(facts),
    servers: deps.agents.servers,
    approvals: (path: string) => deps.agents.approvals(path),
    sessions: (path: string, create: Parameters<AgentsRegistry['sessions']>[1]) => deps.agents.sessions(path, create),
    logger: deps.logger,
    tracing: builtIns.tracing ?? null,
    holdBody,
  }
}

/** A route whose target is a function (bouncer check has made sure it names one). */
function routeFunction(route: RouteConfig, functions: ReadonlyMap<string, FunctionPool>, config: Config, withheldHeaders: ReadonlySet<string>, withheldCookies: ReadonlySet<string>, holdBody: HoldBody): Backend {
  return functionBackend({
    pool: functions.get(route.function as string) as FunctionPool,
    routeKey: routeKeyOf(route.methods, route.path),
    forwardAuthorization: route.forward_authorization,
    publicHosts: config.server.hosts,
    maxBodyBytes: config.server.max_body_bytes,
    withheldHeaders,
    withheldCookies,
    ownsCors: route.cors !== undefined,
    holdBody,
  })
}

/** Each dataset route's backend, and the dataset it serves (its `_schema` route serves the same). */
const compiledDatasets = new WeakMap<Backend, DatasetRoute>()

/** A route whose target is a dataset (bouncer check has made sure its datasource exists). */
function routeDataset(route: RouteConfig, datasources: ReadonlyMap<string, Datasource>): Backend {
  const config = route.dataset as NonNullable<RouteConfig['dataset']>
  const dataset = compileDataset(route.id, route.path, config, datasources.get(config.source) as Datasource)
  const backend = datasetBackend(dataset)
  compiledDatasets.set(backend, dataset)
  return backend
}

/**
 * `GET <path>/_schema` of a dataset route: the same route id (the same policies decide), right after
 * it, so that a route further down that takes any segment (`<path>/:id`) does not take this one.
 */
function datasetSchemaRoute(route: CompiledRoute, index: number): CompiledRoute {
  const dataset = compiledDatasets.get(route.backend) as DatasetRoute
  return Object.freeze({
    ...route,
    index,
    pattern: mustParse(`${dataset.path.replace(/\/$/, '')}/_schema`),
    backend: datasetSchemaBackend(dataset),
  })
}

/**
 * An issuer verifies JWTs with its keys, unless it introspects and names no jwks_uri: a legacy
 * provider with opaque tokens only has no keys to load (and would show as unavailable forever).
 */
function verifiesJwts(issuer: IssuerConfig): boolean {
  return issuer.introspection === undefined || issuer.jwks_uri !== undefined
}

/**
 * token_exchange's endpoints, verifying subject and actor tokens with the runtime's own verifier,
 * behind auth_failures as a route's credential is: the probe found forged tokens sprayed at the
 * token endpoint never counted, and an address held back on every route still had its guesses
 * verified there.
 */
function exchangeEndpoints(config: Config, tokens: TokenVerifier, access: AccessControl, signing: RuntimeSigning, authFailures: AuthFailureGuard | null): ExchangeEndpoint[] {
  const exchange = config.token_exchange
  if (!exchange?.enabled) return []
  return tokenExchangeEndpoints({
    exchange,
    verify: (token, clientIp) => {
      const verify = () => tokens.verify(`Bearer ${token}`, '')
      return authFailures === null ? verify() : authFailures.guarded(clientIp, verify)
    },
    rolesFor: (identity) => access.resolver.rolesFor(identity),
    keys: () => signing.exchangeKeys,
    maxTokenBytes: config.server.max_token_bytes,
  })
}

/** The gateway's own tokens, trusted while token_exchange is enabled, with the keys that sign them. */
function ownTokens(config: Config, signing: RuntimeSigning): OwnTokens | null {
  const exchange = config.token_exchange
  if (!exchange?.enabled) return null
  return { config: ownIssuerConfig(exchange, config.mcp?.resource), publicKey: (kid) => signing.exchangeKeys?.publicKey(kid) }
}

/** One verifier per kind of credential this config can check, and the introspector among them. */
function credentials(config: Config, issuerKeys: ReadonlyMap<string, IssuerKeys>, apiKeys: ApiKeyDirectory | null, signIn: SignIn | null, signing: RuntimeSigning, deps: CompileDeps, clientCrls: readonly RevocationList[] | undefined): {
  authenticator: Authenticator; introspection: Introspector | null; tokens: TokenVerifier; certificateIssuers: readonly X509Issuer[]; certificateRevocations: string
} {
  const introspecting = jwtIssuers(config).find((issuer) => issuer.introspection !== undefined)
  const introspection = introspecting?.introspection
    ? deps.introspectors.acquire({ issuer: { ...introspecting, introspection: introspecting.introspection }, cacheEntries: config.server.token_cache_entries })
    : null
  const tokens = createTokenVerifier({
    issuers: jwtIssuers(config),
    keys: issuerKeys,
    keyRemovalCount: deps.issuers.keyRemovalCount,
    maxTokenBytes: config.server.max_token_bytes,
    cacheEntries: config.server.token_cache_entries,
    logger: deps.logger,
    introspection,
    own: ownTokens(config, signing),
  })
  const forwarded = config.server.forwarded_client_cert
  const fields = forwarded === undefined ? null : { header: forwarded.header, chainHeader: forwarded.chain_header }
  const verifiers = new Map<AcceptedCredential, CredentialVerifier>([['bearer', bearerVerifier(tokens, fields)]])
  if (apiKeys && config.api_keys) verifiers.set('api_key', apiKeyVerifier(apiKeys, config.api_keys.header))
  if (signIn) verifiers.set('session', signIn.verifier)
  const certificateIssuers = x509Issuers(config).map((issuer): X509Issuer => ({
    name: issuer.name,
    cas: mustReadCertificates(issuer.ca ?? config.server.tls?.client_ca ?? ''),
  }))
  const crlFile = config.server.tls?.client_crl
  // The CRLs each CA signed, checked on connections made before they were read and on forwarded certificates (the handshake checks its own).
  // client_ca's CAs too: a chain the handshake took goes up to client_ca's root, which an issuer's ca may leave out.
  const clientCa = config.server.tls?.client_ca
  const revocations = crlFile === undefined ? null : crlsByCa(clientCrls ?? mustReadCrls(crlFile), [...certificateIssuers.flatMap((issuer) => issuer.cas), ...(clientCa === undefined ? [] : mustReadCertificates(clientCa))])
  if (certificateIssuers.length > 0) verifiers.set('client_cert', clientCertVerifier(certificateIssuers, Date.now, fields, { baseUrl: config.sign_in?.base_url, hosts: config.server.hosts }, revocations))
  const certificateRevocations = revocations === null ? '' : [...new Set([...revocations.values()].flat())].map((crl) => crl.signature.toString('base64')).join(',')
  return { authenticator: createAuthenticator(verifiers), introspection, tokens, certificateIssuers, certificateRevocations }
}

/** sign_in: the provider (bouncer check made sure it names a jwt issuer with keys) and the session store. */
function compileSignIn(config: Config, issuerKeys: ReadonlyMap<string, IssuerKeys>, deps: CompileDeps, sessionCookies: Set<string>): SignIn | null {
  const settings = config.sign_in
  if (!settings) return null
  const issuer = jwtIssuers(config).find((candidate) => candidate.name === settings.issuer) as IssuerConfig
  const current = settings.cookie.name
  sessionCookies.add(current)
  const former = new Set([...settings.cookie.previous_names, ...sessionCookies])
  for (const name of [current, `${current}_state`, CONSOLE_COOKIE, `${CONSOLE_COOKIE}_state`]) former.delete(name)
  return createSignIn({
    config: settings,
    issuer,
    keys: issuerKeys,
    store: deps.sessionStores.acquire({ store: settings.session.store, idle: settings.session.idle }),
    formerCookieNames: [...former],
    audience: 'gateway',
    cookieSecure: settings.cookie.secure ?? cookieSecureByDefault(config),
    hosts: config.server.hosts,
    logger: deps.logger,
  })
}

export { CONSOLE_COOKIE }

/**
 * Sign-in to the console (admin.roles, admin.read_roles): sign_in's provider, client and session
 * store, with the admin listener's own endpoints and cookie. Signing out of the console ends only
 * the console's session, not the person's session at the provider.
 */
function compileConsoleSignIn(config: Config, issuerKeys: ReadonlyMap<string, IssuerKeys>, deps: CompileDeps, sessionCookies: Set<string>): SignIn | null {
  const settings = config.sign_in
  const { admin } = config
  if (!settings || admin.roles.length + admin.read_roles.length === 0) return null
  sessionCookies.add(CONSOLE_COOKIE)
  const issuer = jwtIssuers(config).find((candidate) => candidate.name === settings.issuer) as IssuerConfig
  return createSignIn({
    config: {
      ...settings,
      base_url: admin.base_url,
      sign_in_path: CONSOLE_SIGN_IN_PATHS.signIn,
      callback_path: CONSOLE_SIGN_IN_PATHS.callback,
      sign_out_path: CONSOLE_SIGN_IN_PATHS.signOut,
      after_sign_out_path: '/',
      cookie: { name: CONSOLE_COOKIE, previous_names: [], same_site: 'lax', secure: reachedOverHttps(admin.base_url) },
    },
    issuer,
    keys: issuerKeys,
    store: deps.sessionStores.acquire({ store: settings.session.store, idle: settings.session.idle }),
    audience: 'console',
    cookieSecure: reachedOverHttps(admin.base_url),
    endsProviderSession: false,
    logger: deps.logger,
  })
}

/** Where the admin listener serves the console's sign-in (register `{admin base}/.bouncer/callback` at the provider). */
export const CONSOLE_SIGN_IN_PATHS = { signIn: '/.bouncer/sign_in', callback: '/.bouncer/callback', signOut: '/.bouncer/sign_out' } as const

function corsOf(cors: CorsConfig): CorsPolicy {
  return corsPolicy({
    origins: cors.origins,
    methods: cors.methods,
    headers: cors.headers,
    exposeHeaders: cors.expose_headers,
    credentials: cors.credentials,
    maxAgeSeconds: Math.floor(cors.max_age / 1000),
  })
}

function unmanagedCertFields(config: Config): ReadonlySet<string> | null {
  const forwarded = config.server.forwarded_client_cert
  if (forwarded === undefined) return null
  const names = [forwarded.header, forwarded.chain_header].map((name) => foldHeaderName(name.toLowerCase())).filter((name) => !MANAGED_REQUEST_HEADERS.has(name) && !isManagedVariant(name))
  return names.length === 0 ? null : new Set(names)
}

/** `bouncer check` read the file already; one replaced since then is refused here instead. */
function mustReadCertificates(path: string): X509Certificate[] {
  const read = readCertificates(path)
  if (!read.ok) throw new Error(`an x509 issuer's CA file changed since the config was checked: ${read.message}`)
  return read.certificates
}

function mustReadCrls(path: string): RevocationList[] {
  const read = readCrls(path)
  if (!read.ok) throw new Error(`server.tls.client_crl changed since the config was checked: ${read.message}`)
  return read.crls
}

function mustParse(path: string): RoutePattern {
  const parsed = parseRoutePattern(path)
  if (!parsed.ok) throw new Error(`route pattern passed validation but does not parse: ${parsed.message}`)
  return parsed.value
}
