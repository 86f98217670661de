// The config file's shape (SPEC "The config file"). Objects are strict: an unknown key is an error.
// Value types are parsed here, so the rest of the code gets milliseconds, rates and matchers.
import { z } from 'zod'
import { foldHeaderName, hostAllowList, isManagedVariant, MANAGED_REQUEST_HEADERS, parseHostPattern, parseOrigin } from '../http/index.ts'
import { datasetSchema, datasourceSchema } from './dataset-schema.ts'
import { mcpSchema } from './mcp-schema.ts'
import { MAX_RATE_COUNT, parseCidr, rateTooFast, parseDuration, parseGlob, parseListen, parsePercent, parseRate, parseSize, type Parsed } from './values.ts'

/** `json`: how the value is written, for the JSON Schema (`bouncer schema`), where a transform has no shape. */
function parsed<T>(parse: (text: string) => Parsed<T>, json: { description: string; pattern?: string }) {
  return z.string().transform((text, ctx): T => {
    const result = parse(text)
    if (result.ok) return result.value
    ctx.addIssue({ code: 'custom', message: result.message })
    return z.NEVER
  }).meta(json)
}

const duration = parsed(parseDuration, { description: 'a duration: 500ms, 30s, 5m, 1h, 1d', pattern: '^\\s*\\d+(ms|s|m|h|d)\\s*$' })
const rate = parsed(parseRate, { description: 'a rate: N/s, N/m, N/h, N/d', pattern: '^\\s*0*[1-9]\\d*/(s|m|h|d)\\s*$' })
// The patterns below are exact where check refuses a number's range (a port above 65535, a /33):
// an editor validating with the JSON Schema refuses it too. Leading zeros are allowed, as the parsers do.
/** 0 to 65535 in at most five digits (parseListen). */
const PORT = '(\\d{1,4}|[0-5]\\d{4}|6[0-4]\\d{3}|65[0-4]\\d{2}|655[0-2]\\d|6553[0-5])'
/** An IPv4 address (digits and dots) with a prefix of 0 to 32, or an IPv6 one (a colon in it) with 0 to 128 (parseCidr). */
const CIDR_PATTERN = '^\\s*([0-9.]+(/0*(3[0-2]|[12]?\\d))?|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(/0*(12[0-8]|1[01]\\d|[1-9]?\\d))?)\\s*$'
const cidr = parsed(parseCidr, { description: 'an IPv4 or IPv6 address, or a CIDR block (10.0.0.0/8, 2001:db8::/32)', pattern: CIDR_PATTERN })
const glob = parsed(parseGlob, { description: 'a glob: * matches any run of characters, ? one character', pattern: '^[^\\[\\]{}]+$' })
const listen = parsed(parseListen, { description: 'host:port, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080', pattern: `^\\s*(\\[[0-9A-Fa-f:.]+\\]|[^:\\[\\]]+):${PORT}\\s*$` })
const percent = parsed(parsePercent, { description: 'a percentage: 20%, 12.5%', pattern: '^\\s*\\d{1,3}(\\.\\d{1,2})?%\\s*$' })
const size = parsed(parseSize, { description: 'a size: 128MB, 1GB', pattern: '^\\s*\\d+\\s*(MB|GB)\\s*$' })
const hostPattern = parsed(parseHostPattern, { description: 'a host name clients use: api.example.com, *.example.com or api.example.com:8443' })
/**
 * A duration the gateway runs as a timer (setTimeout, setInterval): Node runs one longer than
 * 2^31 - 1 ms (24.8 days) after 1 ms instead (found by fuzzing): a 30d `jwks_refresh_interval`
 * refetched the keys in a loop, a 30d `limits_store.timeout` timed every Redis command out at once,
 * a 30d `shutdown_timeout` cut the drain after an uncaught exception to 1 ms.
 */
export const MAX_TIMER_MS = 24 * 86_400_000
const timer = duration.refine((ms) => ms <= MAX_TIMER_MS, 'at most 24d: Node runs a longer timer at once')
/**
 * For the JSON Schema, where a refinement (code) is lost: the pattern of a duration of at least
 * `min`, 1ms (more than 0), 100ms or 1s. Exact: a count that is not all zeros, with enough digits
 * when it counts milliseconds. The upper bounds (24d) stay check's alone: as a pattern they are unreadable.
 */
function atLeast(min: 1 | 100 | 1000): { pattern: string } {
  const ms = min === 1 ? '' : `|[1-9]\\d{${String(min).length - 1},}ms`
  return { pattern: min === 1 ? '^\\s*0*[1-9]\\d*(ms|s|m|h|d)\\s*$' : `^\\s*0*([1-9]\\d*(s|m|h|d)${ms})\\s*$` }
}
/** A client-facing timeout: Node reads 0 as "never", which would leave slow clients unbounded. */
const clientTimeout = timer.refine((ms) => ms > 0, 'must be more than 0: 0 would never close a slow or idle client').meta(atLeast(1))

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/
const name = (what: string) =>
  z.string().regex(NAME, `a ${what} name is letters, digits and . _ : - (starting with a letter or digit)`)

const httpUrl = z.string().refine((text) => {
  try {
    const url = new URL(text)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}, 'must be an http:// or https:// URL').meta({ pattern: '^https?://' })

function hasUserinfo(text: string): boolean {
  try {
    const url = new URL(text)
    return url.username !== '' || url.password !== ''
  } catch {
    return false // refused as no URL already
  }
}

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const
const method = z.enum([...HTTP_METHODS, '*'], { error: `a method is one of ${HTTP_METHODS.join(', ')} or "*"` })

/** JWS algorithms an issuer may use. `none` and HS* are absent on purpose (SPEC: never accepted). */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
] as const
const algorithm = z.string().refine(
  (alg) => (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg),
  { error: (issue) => `algorithm "${String(issue.input)}" is not allowed: use one of ${ASYMMETRIC_ALGORITHMS.join(', ')} (none and HS* are never accepted)` },
).meta({ enum: [...ASYMMETRIC_ALGORITHMS] })

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const headerName = z.string().regex(HEADER_NAME, 'not a valid HTTP header name')
/**
 * What Node and undici let a header value hold. Any other character (a line break from an
 * environment variable, a "€") passed check, and every request to the upstream was then answered
 * 502 "failed mid-exchange", the header refused before a byte was sent (found by an adversarial probe).
 */
const headerValue = z.string().regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'an HTTP header value holds tabs and the characters from U+0020 to U+00FF (no line break or other control character)')

/**
 * Why a claim condition is refused. A union's own words were "Invalid input" whatever the cause: a
 * glob's ("only * and ? are wildcards") was lost, and YAML's `email_verified: true` or `level: 1` (a
 * boolean, a number) said nothing of quoting them (the access probe).
 */
function claimConditionError(issue: { input?: unknown; errors?: ReadonlyArray<ReadonlyArray<{ message: string; path: readonly PropertyKey[] }>> }): string {
  const scalar = (value: unknown) => typeof value === 'boolean' || typeof value === 'number'
  const quote = (value: unknown) => `write ${String(value)} quoted, "${String(value)}", which matches the claim's ${String(value)} as well as the string`
  const { input } = issue
  if (scalar(input)) return `a claim condition is a glob (a string) or a list of them: ${quote(input)}`
  const inner = typeof input === 'string' ? issue.errors?.[0]?.[0] : Array.isArray(input) ? issue.errors?.[1]?.[0] : undefined
  if (inner === undefined) return 'a claim condition is a glob (a string) or a list of them'
  const at = typeof inner.path[0] === 'number' ? `list item ${inner.path[0] + 1}: ` : ''
  const item = Array.isArray(input) && typeof inner.path[0] === 'number' ? input[inner.path[0]] as unknown : undefined
  return `${at}${scalar(item) ? `a claim condition's list holds globs (strings): ${quote(item)}` : inner.message}`
}
const claimValue = z.union([glob, z.array(glob).min(1)], { error: claimConditionError })
const origin = parsed(parseOrigin, { description: 'an origin as browsers send it (https://lookerstudio.google.com), or * for any', pattern: '^(\\*|https?://[^/?#]+)$' })
const claimConditions = z.record(z.string().min(1), claimValue)

/** The TLS versions a listener may take as its lowest: TLS 1.0 and 1.1 are deprecated (RFC 8996). */
export const TLS_MIN_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const

const tls = z.strictObject({
  /** PEM: the certificate first, then its intermediates. */
  cert: z.string().min(1),
  key: z.string().min(1),
  min_version: z.enum(TLS_MIN_VERSIONS, { error: 'min_version is TLSv1.2 or TLSv1.3' }).default('TLSv1.2'),
  /** PEM: the CAs client certificates must chain to; asking for client certificates needs it. */
  client_ca: z.string().min(1).optional(),
  /** PEM: the CRLs of client_ca's CAs (and of x509 issuers' ca, for forwarded certificates); a revoked client certificate is refused. */
  client_crl: z.string().min(1).optional(),
  /** none: no certificate asked for; optional: asked for, checked where a route accepts client_cert; require: no connection without a valid one. Default: optional with client_ca, else none. */
  client_auth: z.enum(['none', 'optional', 'require'], { error: 'client_auth is none, optional or require' }).optional(),
}).transform((value) => ({ ...value, client_auth: value.client_auth ?? (value.client_ca === undefined ? 'none' as const : 'optional' as const) }))

/**
 * RFC 9440: a TLS-terminating proxy among server.trusted_proxies hands on its client's certificate
 * in these fields (`:base64 of the DER:`), checked against the x509 issuers' CAs as a handshake's.
 */
const forwardedClientCert = z.strictObject({
  /** The end-entity certificate, one Byte Sequence. */
  header: headerName.default('Client-Cert'),
  /** The CAs above it, a List of Byte Sequences (optional: the issuers' ca may hold the intermediates). */
  chain_header: headerName.default('Client-Cert-Chain'),
})

const WORKERS = 'workers is auto (one per core) or a whole number from 1 to 256'

const server = z.strictObject({
  listen: listen.prefault('127.0.0.1:8080'),
  trusted_proxies: z.array(cidr).default([]),
  /**
   * Peers that may ask the forward-auth endpoint (/.bouncer/auth), whose 200 carries upstream
   * credentials. Apart from trusted_proxies: a load balancer whose X-Forwarded-For is believed
   * relays every client's request, and would have let any client ask.
   */
  forward_auth_peers: z.array(cidr).default([]),
  /** Names clients reach the gateway by: X-Forwarded-Host repeats a client's Host only when it is one. */
  hosts: z.array(hostPattern).default([]).transform(hostAllowList),
  max_header_bytes: z.number().int().min(1024).max(1_048_576).default(16_384),
  max_body_bytes: z.number().int().min(0).default(10_485_760),
  /**
   * Form and JSON POST bodies held whole at once (read for their `_method`), and a function's
   * request bodies until handed to its worker, per process: a body
   * past it waits for others to be forwarded (within request_timeout). One is let in whatever its size.
   */
  form_body_total_bytes: z.number().int().min(0).default(268_435_456),
  max_token_bytes: z.number().int().min(512).max(65_536).default(8_192),
  token_cache_entries: z.number().int().min(0).default(10_000),
  request_timeout: clientTimeout.prefault('60s'),
  headers_timeout: clientTimeout.prefault('10s'),
  keep_alive_timeout: clientTimeout.prefault('5s'),
  shutdown_timeout: timer.prefault('30s'),
  case_sensitive_paths: z.boolean().default(false),
  max_connections: z.number().int().min(1).max(1_000_000).default(10_000),
  send_timeout: clientTimeout.prefault('60s'),
  /**
   * A WebSocket tunnel with no bytes either way for this long is closed (close 1001, going away), as
   * a load balancer's idle timeout would. None by default: a tunnel lasts as long as its ends keep it.
   */
  websocket_idle_timeout: clientTimeout.optional(),
  /** Bytes of upstream answers held in memory for a client slower than its upstream, one connection's answers together, so the upstream connection is not held too (0: none). */
  response_buffer_bytes: z.number().int().min(0).max(1_073_741_824).default(262_144),
  /** All answers' held bytes together, per process (each worker its own). */
  response_buffer_total_bytes: z.number().int().min(0).default(67_108_864),
  /** TLS termination on the gateway listener (files re-read when they change, and on SIGHUP). */
  tls: tls.optional(),
  /** Client certificates from a TLS-terminating load balancer in trusted_proxies (RFC 9440 fields). */
  forwarded_client_cert: forwardedClientCert.optional(),
  /** HTTP/2 by ALPN on a TLS listener, HTTP/1.1 alongside. */
  http2: z.boolean().default(false),
  /** Request-path workers on the one port (SO_REUSEPORT): `auto` is one per core (src/instance/workers). */
  workers: z.union([z.literal('auto'), z.number().int(WORKERS).min(1, WORKERS).max(256, WORKERS)], { error: WORKERS }).default(1),
  /**
   * A worker whose event loop has not answered the primary this long (a runaway synchronous task) is
   * replaced, as a liveness probe restarts a single gateway: the primary answers /healthz itself.
   */
  worker_stall_timeout: timer.refine((ms) => ms >= 1_000, 'at least 1s: a loaded worker may take that long to answer').meta(atLeast(1_000)).prefault('30s'),
  /** Reload when the config file changes on disk (polled each second; a Kubernetes ConfigMap's swap counts), as on SIGHUP. */
  watch_config: z.boolean().default(false),
})

const admin = z.strictObject({
  listen: listen.prefault('127.0.0.1:9090'),
  token: z.string().min(1).optional(),
  /** A second token that reads everything (the console's read-only access) but reloads, verifies and revokes nothing. */
  read_token: z.string().min(1).optional(),
  /** Console sign-in (SPEC "Console"): people signed in through `sign_in` whose roles include one of these may do everything… */
  roles: z.array(z.string().min(1)).default([]),
  /** …and these may read and simulate, but change nothing (as read_token). */
  read_roles: z.array(z.string().min(1)).default([]),
  /** The admin listener's public URL as a browser reaches it (https://bouncer-admin.example.com): the sign-in's redirect_uri and same-origin check use it. Default: the request's own Host, over http. */
  base_url: httpUrl.optional(),
})

/** RFC 7662: opaque access tokens are checked by asking the provider (identity/introspection.ts). */
const introspection = z.strictObject({
  url: httpUrl,
  client_id: z.string().min(1),
  /** May be a `${secret:NAME}` reference. */
  client_secret: z.string().min(1),
  /** An active answer is kept this long at most, and never past the token's exp; 0s asks every time. */
  cache: duration.prefault('60s'),
  /**
   * An inactive answer (revoked, expired, unknown) is kept this long, so a client retrying a dead
   * token is refused without asking the provider each time; 0s asks every time. Kept apart from
   * active answers: a flood of unknown tokens cannot push those out.
   */
  negative_cache: duration.prefault('5s'),
  // A timer (AbortSignal.timeout): 30d aborted every introspection after 1 ms (a probe).
  timeout: timer.prefault('5s').refine((ms) => ms > 0, 'must be more than 0').meta(atLeast(1)),
})

const jwtIssuer = z.strictObject({
  name: name('issuer'),
  type: z.literal('jwt').default('jwt'),
  issuer: z.string().min(1),
  audiences: z.array(z.string().min(1)).min(1, 'list at least one audience: a token is accepted only for its audience'),
  // fetch refuses a URL with user:password@ ("Request cannot be constructed…"): the keys never
  // came, and the password was in every retry's log line and in GET /api/catalog, read-only token
  // included (an adversarial probe). A key set needs no credentials.
  jwks_uri: httpUrl.refine((text) => !hasUserinfo(text), 'a jwks_uri cannot hold credentials (user:password@): a key set is public, and fetch refuses such a URL').optional(),
  algorithms: z.array(algorithm).min(1).default(['RS256', 'ES256']),
  clock_tolerance: duration.prefault('30s'),
  required_claims: z.array(z.string().min(1)).default([]),
  // 0s scheduled the next refresh at once after each one: a gateway fetched the JWKS ~250 times a
  // second for good (a probe), and cached no verified token (their life is bounded by it).
  jwks_refresh_interval: timer.refine((ms) => ms >= 1_000, 'at least 1s: each refresh fetches the keys from the provider').meta(atLeast(1000)).prefault('5m'),
  jwks_cooldown: timer.prefault('30s'),
  /** AWS Cognito access tokens carry no aud: then client_id must be one of the audiences. */
  client_id_audience: z.boolean().default(false),
  /** The header typs accepted (RFC 7515 §4.1.9); `untyped`: no typ. Other JWT kinds are refused. */
  token_types: z.array(z.string().min(1)).min(1, 'list at least one token type (at+jwt, JWT, untyped)').default(['at+jwt', 'JWT', 'untyped']),
  introspection: introspection.optional(),
})

/** Workload identity from client certificates: subject = the URI SAN (a SPIFFE ID), else the CN. */
const x509Issuer = z.strictObject({
  name: name('issuer'),
  type: z.literal('x509'),
  /** PEM: the CAs whose certificates this issuer vouches for; default server.tls.client_ca. */
  ca: z.string().min(1).optional(),
})

const issuer = z.discriminatedUnion('type', [jwtIssuer, x509Issuer], { error: 'an issuer type is jwt (the default: bearer tokens) or x509 (client certificates)' })

const trustRule = z.strictObject({
  issuer: z.string(),
  subject: glob.optional(),
  claims: claimConditions.optional(),
})

const role = z.strictObject({
  name: name('role'),
  description: z.string().optional(),
  assumed_by: z.array(trustRule).min(1, 'a role needs at least one trust rule (assumed_by)'),
  policies: z.array(z.string()).default([]),
})

const statement = z.strictObject({
  sid: z.string().min(1).optional(),
  effect: z.enum(['allow', 'deny'], { error: 'effect is allow or deny' }),
  // `call`: an MCP tool call (routes `mcp:<tool>`, SPEC "Agents: MCP and token exchange").
  actions: z.array(z.union([method, z.literal('call')])).min(1),
  routes: z.array(glob).min(1).prefault(['*']),
  conditions: z
    .strictObject({
      source_ip: z.array(cidr).min(1).optional(),
      claims: claimConditions.optional(),
    })
    .optional(),
})

/**
 * The methods a statement applies to: as written, and for one naming GET, HEAD too. HEAD is GET
 * without the body (RFC 9110 §9.3.2): Express, Spring and Go's ServeMux run the GET handler for it,
 * and its answer's headers (length, ETag, the upstream's own) are the GET's, so a deny on GET let
 * HEAD through (found by an adversarial probe); and since a route taking GET takes its HEAD, an
 * allow on GET alone answered `curl -I` 403. As nginx's `limit_except GET` allows HEAD.
 */
export function statementActions(statement: { actions: readonly string[] }): readonly string[] {
  const { actions } = statement
  return actions.includes('GET') && !actions.includes('HEAD') ? [...actions, 'HEAD'] : actions
}

const policy = z.strictObject({
  name: name('policy'),
  description: z.string().optional(),
  statements: z.array(statement).min(1),
})

/** How requests are spread over an upstream's targets (SPEC "Upstreams, added"). */
export const BALANCE_STRATEGIES = ['round_robin', 'least_request', 'hash:principal'] as const
/** What a retry may follow: no connection (nothing was sent), a reset or a timeout before the answer, or a 5xx status. */
export const RETRY_FAILURES = ['connect_failure', 'reset', 'timeout'] as const

const positiveTimer = timer.refine((ms) => ms > 0, 'must be more than 0').meta(atLeast(1))

const healthCheck = z.strictObject({
  // Sent as written: undici writes a character as one Latin-1 byte (é: 0xE9, which no target reads
  // as a URL) or refuses it, so every check failed and the target was out for good.
  path: z.string().regex(/^\/[\x21\x22\x24-\x7e]*$/, 'a path on the target, starting with /, in printable ASCII without # or spaces: percent-encode other characters (/sant%C3%A9)'),
  interval: positiveTimer.prefault('5s'),
  timeout: positiveTimer.prefault('1s'),
  unhealthy_after: z.number().int().min(1).max(100).default(2),
  healthy_after: z.number().int().min(1).max(100).default(2),
})

const eject = z.strictObject({
  after: z.number().int().min(1).max(1000).default(5),
  for: positiveTimer.prefault('30s'),
})

const retryOn = z.union([
  z.enum(RETRY_FAILURES),
  z.string().regex(/^5\d\d$/, 'a retry condition is connect_failure, reset, timeout or a 5xx status ("503")'),
  z.number().int().min(500).max(599),
], { error: 'a retry condition is connect_failure, reset, timeout or a 5xx status ("503")' })

const retries = z.strictObject({
  /** Tries in all, the first included. */
  attempts: z.number().int().min(1).max(10).default(2),
  on: z.array(retryOn).min(1).default(['connect_failure', '503']),
  budget: percent.prefault('20%'),
})

const upstreamTls = z.strictObject({
  /** PEM file of the CAs that may sign the upstream's certificate (instead of the system's). */
  ca: z.string().min(1).optional(),
  /** PEM files of the client certificate and key presented to the upstream (mTLS). */
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  /** SNI and the name the upstream's certificate must carry (by default the target's host). */
  server_name: z.string().regex(/^[A-Za-z0-9.-]+$/, 'a host name (letters, digits, . and -)').optional(),
})

const upstream = z.strictObject({
  name: name('upstream'),
  url: httpUrl.optional(),
  /** Several copies of one service, instead of url. */
  targets: z.array(httpUrl).min(1).optional(),
  balance: z.enum(BALANCE_STRATEGIES).default('round_robin'),
  health_check: healthCheck.optional(),
  eject: eject.optional(),
  retries: retries.optional(),
  tls: upstreamTls.optional(),
  // Timers the gateway runs itself too (a try queued for a connection, a WebSocket handshake's
  // connect and head): 0 or over 24 days fired at once, and every queued try was a 504.
  connect_timeout: positiveTimer.prefault('5s'),
  timeout: positiveTimer.prefault('30s'),
  max_connections: z.number().int().min(1).max(65_536).default(128),
  max_concurrent: z.number().int().min(1).optional(),
  headers: z.record(headerName, headerValue).default({}),
  identity_assertion: z.boolean().default(false),
}).superRefine((value, ctx) => {
  if (value.url === undefined && value.targets === undefined) ctx.addIssue({ code: 'custom', message: 'an upstream needs url (one target) or targets (several)' })
  if (value.url !== undefined && value.targets !== undefined) ctx.addIssue({ code: 'custom', path: ['targets'], message: 'give url or targets, not both' })
  if (value.tls && (value.tls.cert === undefined) !== (value.tls.key === undefined)) {
    // At the one given: the missing key has no place in the file to point at.
    ctx.addIssue({ code: 'custom', path: ['tls', value.tls.cert === undefined ? 'key' : 'cert'], message: 'a client certificate needs both cert and key' })
  }
}).meta({ oneOf: [{ required: ['url'] }, { required: ['targets'] }] })

/**
 * A function: a module exporting an AWS Lambda-style handler, run in a pool of worker threads
 * (src/functions/). `memory` bounds each worker's JS heap; `concurrency` is the pool's size and the
 * most invocations in flight at once.
 */
const fn = z.strictObject({
  name: name('function'),
  module: z.string().min(1),
  /** The export to call: Lambda's handler setting is `file.export`; `handler` when not said. */
  handler: z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'a handler is the name of an export of the module').default('handler'),
  timeout: positiveTimer.prefault('30s'),
  memory: size.refine((mb) => mb >= 32 && mb <= 16_384, 'memory is 32MB to 16GB').prefault('128MB'),
  concurrency: z.number().int().min(1).max(256).default(4),
  /** The worker's process.env, as Lambda's Environment.Variables: the gateway's own environment is not handed on. */
  environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name is letters, digits and _'), z.string()).default({}),
})

/** What a route may accept (SPEC "Callers, added"), in the order it tries them; `bearer` by default. */
export const ACCEPTED_CREDENTIALS = ['bearer', 'session', 'api_key', 'client_cert'] as const
export type AcceptedCredential = (typeof ACCEPTED_CREDENTIALS)[number]

/** Browsers cache a preflight answer at most 24h (Firefox; Chromium 2h): a longer max_age says nothing more. */
const MAX_CORS_AGE_MS = 86_400_000
const cors = z.strictObject({
  origins: z.array(origin).min(1),
  methods: z.array(z.enum(HTTP_METHODS)).min(1).default(['GET']),
  // `*` is a token, so a header name, but the gateway grants the headers listed by name: it matched none.
  headers: z.array(headerName.refine((name) => name !== '*', '"*" would match no header: a preflight is granted the headers listed, by name; list each one a page sends (authorization, content-type)')).default([]),
  expose_headers: z.array(headerName).default([]),
  credentials: z.boolean().default(false),
  max_age: duration.prefault('10m').refine((ms) => ms <= MAX_CORS_AGE_MS, 'at most 1d: browsers keep a preflight answer no longer'),
})

const route = z.strictObject({
  id: name('route'),
  methods: z.array(method).min(1).default(['*']),
  path: z.string(),
  /** The route's target: exactly one of these (bouncer check says so otherwise). */
  upstream: z.string().optional(),
  function: z.string().optional(),
  dataset: datasetSchema.optional(),
  upstream_path: z.string().optional(),
  limits: z.array(z.string()).refine((names) => new Set(names).size === names.length, 'names a limit twice: each limit counts a request once').default([]),
  public: z.boolean().default(false),
  forward_authorization: z.boolean().default(false),
  websocket: z.boolean().default(false),
  path_params: z.boolean().default(false),
  accept: z.array(z.enum(ACCEPTED_CREDENTIALS)).min(1).default(['bearer'])
    .refine((kinds) => new Set(kinds).size === kinds.length, 'list each credential kind once'),
  cors: cors.optional(),
})

const LIMIT_KEY = /^(principal|actor|role|route|ip|claim:[^\s]+|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/

/**
 * Why header:NAME cannot count callers when the gateway manages NAME (consumes, strips or writes it,
 * http/managed-headers.ts, look-alikes such as X_Real_IP included): limits never see such a header,
 * so every caller would share the one "absent" budget (probe finding). Null for a header they see.
 */
function managedHeaderKey(key: string): string | null {
  if (!key.startsWith('header:')) return null
  const name = key.slice(7).toLowerCase()
  if (!MANAGED_REQUEST_HEADERS.has(name) && !isManagedVariant(name)) return null
  const folded = foldHeaderName(name)
  const instead = folded === 'authorization' || folded === 'host'
    ? 'count callers by key: principal'
    : /^(forwarded|x-real-ip|x-client-ip|x-forwarded-)/.test(folded)
      ? 'count callers by key: ip, the real client address (list your proxies in server.trusted_proxies)'
      : 'count callers by key: principal or key: ip'
  return `the gateway manages the ${key.slice(7)} header itself and limits never see it: ${key} would be one budget shared by every caller; ${instead}`
}
const limit = z
  .strictObject({
    name: name('limit'),
    key: z.string().regex(LIMIT_KEY, 'key is principal, actor, role, route, ip, claim:NAME or header:NAME'),
    rate: rate.optional(),
    burst: z.number().int().min(1).max(MAX_RATE_COUNT).optional(),
    quota: rate.optional(),
    // An IPv6 caller is counted by this prefix of its address (a subscriber holds a whole /64).
    ip_prefix_v6: z.number().int().min(0).max(128).default(64),
  })
  .superRefine((value, ctx) => {
    if (!value.rate && !value.quota) ctx.addIssue({ code: 'custom', message: 'a limit needs a rate, a quota, or both' })
    const managed = managedHeaderKey(value.key)
    if (managed) ctx.addIssue({ code: 'custom', path: ['key'], message: managed })
    if (value.burst !== undefined && !value.rate) ctx.addIssue({ code: 'custom', path: ['burst'], message: 'burst needs a rate' })
    const tooFast = value.rate && rateTooFast(value.rate)
    if (tooFast) ctx.addIssue({ code: 'custom', path: ['rate'], message: tooFast })
    if (value.quota && value.quota.periodMs < 60_000) {
      ctx.addIssue({ code: 'custom', path: ['quota'], message: 'a quota counts per minute, hour or day (N/m, N/h, N/d); use rate for per-second limits' })
    }
  })
  .meta({ anyOf: [{ required: ['rate'] }, { required: ['quota'] }] })

/**
 * Failed authentications per client address (limits/auth-failures.ts): once an address's credentials
 * have failed `burst` times, and then more than `rate`, its requests that need an identity get 429
 * before their credential is read. Counted in limits_store.
 */
const authFailures = z.strictObject({
  rate,
  burst: z.number().int().min(1).max(MAX_RATE_COUNT).optional(),
  ip_prefix_v6: z.number().int().min(0).max(128).default(64),
}).superRefine((value, ctx) => {
  const tooFast = rateTooFast(value.rate)
  if (tooFast) ctx.addIssue({ code: 'custom', path: ['rate'], message: tooFast })
})

const limitsStore = z.discriminatedUnion('type', [
  // At most 4 million: with server.workers the shared table is sized at start (128 bytes a slot, a
  // power of two at least twice max_keys: 1 GB at this bound); a larger one could not be allocated.
  z.strictObject({ type: z.literal('memory'), max_keys: z.number().int().min(100).max(4_000_000).default(100_000) }),
  z.strictObject({
    type: z.literal('redis'),
    url: z.string().regex(/^rediss?:\/\//, 'a Redis URL starts with redis:// or rediss://'),
    on_error: z.enum(['allow', 'deny']).default('deny'),
    prefix: z.string().default('bouncer:'),
    timeout: timer.prefault('500ms'),
  }),
], { error: 'limits_store.type is memory or redis' })

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\//, 'a PostgreSQL URL starts with postgres://')
const postgresSchema = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a schema name is lower-case letters, digits and _')

const auditSink = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sqlite'), path: z.string().min(1) }),
  z.strictObject({
    type: z.literal('postgres'),
    url: postgresUrl,
    schema: postgresSchema.default('bouncer'),
    /** How long a write may go unanswered before its records go to the spill file (the sink counts as down). */
    write_timeout: timer.refine((ms) => ms >= 100, 'write_timeout is at least 100ms').meta(atLeast(100)).prefault('2s'),
    /** How long one read of the log (a search, the console's figures) may run before the server ends it. */
    read_timeout: timer.refine((ms) => ms >= 1_000, 'read_timeout is at least 1s').meta(atLeast(1000)).prefault('30s'),
  }),
  z.strictObject({ type: z.literal('stdout') }),
], { error: 'an audit sink type is sqlite, postgres or stdout' })

const audit = z.strictObject({
  // prefault: the array holds a transform (write_timeout's duration), and a default after a transform is not shown in the JSON Schema
  sinks: z.array(auditSink).prefault([{ type: 'sqlite', path: './data/audit.db' }]),
  // 0 is no "keep forever" (a probe): the worker deleted every record within a second of its writing.
  retention: duration.prefault('30d').refine((ms) => ms >= 1_000, 'at least 1s: 0 does not keep records forever, it deletes each as soon as it is written').meta(atLeast(1000)),
  durability: z.enum(['batched', 'sync']).default('batched'),
  flush_interval: timer.prefault('100ms'),
  max_batch: z.number().int().min(1).max(100_000).default(2_000),
  queue_capacity: z.number().int().min(100).default(100_000),
  spill_dir: z.string().default('./data/audit-spill'),
  /**
   * The most the spill files may hold, all sinks and workers together: a PostgreSQL away for hours
   * filled a node's disk (a probe). At it, `on_spill_full` says what the gateway does.
   */
  spill_max_bytes: z.number().int().min(1_048_576).default(1_073_741_824),
  /**
   * `refuse`: answer 503 audit_unavailable (and say not ready) until the spill has room again (its
   * replay deletes each segment, a sixteenth of the cap, once the sink has its records), so no
   * request goes unrecorded; `drop`: keep serving, and count the records lost in bouncer_audit_dropped_total.
   */
  on_spill_full: z.enum(['refuse', 'drop']).default('refuse'),
  // A timer (the audit worker's setInterval): 30d signed a checkpoint every millisecond (a probe).
  checkpoint_interval: timer.prefault('1m').refine((ms) => ms >= 100, 'checkpoint_interval is at least 100ms').meta(atLeast(100)),
  checkpoint_path: z.string().min(1).optional(),
  /** The `instance` of every record this gateway writes; default $BOUNCER_INSTANCE, else host:pid. */
  instance_id: z.string().regex(NAME, 'an instance id is letters, digits and . _ : - (starting with a letter or digit)').max(128).optional(),
})

/** The issuer name of every API key's identity: trust rules match API keys with `issuer: api-keys`. */
export const API_KEYS_ISSUER = 'api-keys'
const DEFAULT_API_KEYS_PATH = './data/api-keys.db'

const apiKeyStore = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sqlite'), path: z.string().min(1).default(DEFAULT_API_KEYS_PATH) }),
  z.strictObject({ type: z.literal('postgres'), url: postgresUrl, schema: postgresSchema.default('bouncer') }),
], { error: 'api_keys.store.type is sqlite or postgres' })

const apiKeys = z.strictObject({
  /** `sqlite` (one host, or instances sharing the file), or `{type: postgres, url}` for several instances. */
  store: z.union([z.literal('sqlite'), apiKeyStore], { error: 'api_keys.store is sqlite, {type: sqlite, path}, or {type: postgres, url, schema} (PostgreSQL needs its url)' })
    .default('sqlite')
    .transform((store) => (store === 'sqlite' ? { type: 'sqlite' as const, path: DEFAULT_API_KEYS_PATH } : store)),
  header: headerName.default('X-API-Key'),
  /** How long a key's record is used before it is read again: the bound on a revocation's delay. */
  cache: duration.prefault('500ms').refine((ms) => ms <= 1_000, 'at most 1s: a revoked key must be refused within a second on every instance'),
})

/** A path on the gateway itself (sign_in's endpoints): absolute, no query, no `..`. */
const gatewayPath = z.string().regex(/^\/(?!\/)[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, 'a path on this gateway, starting with / (no query, no //)')
  .refine((path) => !path.split('/').some((segment) => segment === '.' || segment === '..'), 'no . or .. segments')

const DEFAULT_SESSIONS_PATH = './data/sessions.db'
const sessionStore = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('memory') }),
  z.strictObject({ type: z.literal('sqlite'), path: z.string().min(1).default(DEFAULT_SESSIONS_PATH) }),
  z.strictObject({
    type: z.literal('redis'),
    url: z.string().regex(/^rediss?:\/\//, 'a Redis URL starts with redis:// or rediss://').default('redis://127.0.0.1:6379'),
    prefix: z.string().default('bouncer:sessions:'),
    timeout: positiveTimer.prefault('1s'),
  }),
], { error: 'sign_in.session.store.type is memory, sqlite or redis' })

const cookieName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'a cookie name is a token (letters, digits and !#$%&\'*+.^_`|~-)')

/** People in a browser (SPEC "Callers, added"): OIDC authorization code flow with PKCE, server-side sessions. */
const signIn = z.strictObject({
  /** The issuers entry (type jwt) whose provider people sign in at; its keys verify the ID token. */
  issuer: z.string().min(1),
  client_id: z.string().min(1),
  /** May be a `${secret:NAME}` reference; absent for a public client (PKCE only). */
  client_secret: z.string().min(1).optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope is printable ASCII without spaces, quotes or backslashes')).min(1).default(['openid', 'email', 'profile']),
  /** The gateway's public URL (https://gateway.example.com): redirect_uri and the same-origin check use it. Default: the request's own scheme and Host. */
  base_url: httpUrl.optional(),
  callback_path: gatewayPath.default('/.bouncer/callback'),
  sign_in_path: gatewayPath.default('/.bouncer/sign_in'),
  sign_out_path: gatewayPath.default('/.bouncer/sign_out'),
  /** Where the browser goes after signing out (a path on this gateway; registered at the provider as post_logout_redirect_uri). */
  after_sign_out_path: gatewayPath.default('/'),
  cookie: z.strictObject({
    name: cookieName.default('bouncer_session'),
    /**
     * Names the session cookie had before (a rename): browsers keep sending the old cookie, a live
     * session's bearer credential, until it expires. Never forwarded to an upstream or a function,
     * never set by one, and cleared (with the session it names ended) when the browser signs in
     * again or out. Names used earlier in the running process (a reload's rename) are withheld without it.
     */
    previous_names: z.array(cookieName).default([]),
    /** Default: true on a TLS listener or with an https base_url. */
    secure: z.boolean().optional(),
    same_site: z.enum(['lax', 'strict', 'none'], { error: 'same_site is lax, strict or none' }).default('lax'),
  }).prefault({}),
  session: z.strictObject({
    /** Absolute: a session ends this long after sign-in, however active. */
    ttl: positiveTimer.prefault('8h'),
    /** A session unused this long ends. */
    idle: positiveTimer.prefault('1h'),
    store: z.union([z.enum(['memory', 'sqlite', 'redis']), sessionStore], { error: 'sign_in.session.store is memory, sqlite, redis, or {type: sqlite, path} / {type: redis, url, prefix}' })
      .default('memory')
      .transform((store) => (typeof store !== 'string' ? store
        : store === 'memory' ? { type: 'memory' as const }
          : store === 'sqlite' ? { type: 'sqlite' as const, path: DEFAULT_SESSIONS_PATH }
            : { type: 'redis' as const, url: 'redis://127.0.0.1:6379', prefix: 'bouncer:sessions:', timeout: 1_000 })),
  }).prefault({}),
  /** How long a sign-in may take at the provider (the state, nonce and PKCE verifier are kept this long). */
  login_timeout: positiveTimer.prefault('10m'),
})

const MASTER_KEY = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/
const secretsStore = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('embedded'),
    path: z.string().default('./data/secrets.db'),
    master_key: z.string().regex(MASTER_KEY, 'master_key is env:NAME or file:PATH'),
  }),
  z.strictObject({ type: z.literal('env'), prefix: z.string().default('BOUNCER_SECRET_') }),
  z.strictObject({ type: z.literal('file'), dir: z.string().min(1) }),
], { error: 'secrets.store.type is embedded, env or file' })

const rotationSchedule = z.strictObject({
  // 0s made a new version, and ran the hook, at every refresh (found by the secrets probe).
  every: duration.refine((ms) => ms > 0, 'must be more than 0').meta(atLeast(1)),
  hook: z.string().min(1).optional(),
  generate: z.number().int().min(16).max(1024).default(32),
})

const secrets = z.strictObject({
  store: secretsStore,
  refresh_interval: timer.prefault('2s'),
  rotation: z.record(z.string(), rotationSchedule).default({}),
})

const assertion = z.strictObject({
  issuer: z.string().min(1).default('bouncer'),
  // `exp` is in whole seconds (iat + floor(ttl)): under 1s every assertion was expired as it was made (a probe).
  ttl: duration.prefault('5m').refine((ms) => ms <= 300_000, 'an assertion lives at most 5m (SPEC)').refine((ms) => ms >= 1_000, 'an assertion lives at least 1s: its exp is in whole seconds, and a shorter one is expired when it is made'),
  rotate_every: duration.prefault('30d'),
})

/** The role an agent holds, and which of a user's roles it may act with (`*`: any of them). */
const exchangeActor = z.strictObject({
  role: z.string().min(1),
  delegated_roles: z.array(z.string().min(1)).min(1, 'list the user roles this agent may act with, or ["*"]'),
})

/**
 * RFC 8693 token exchange at POST /oauth2/token (SPEC "Agents: MCP and token exchange"): an agent
 * trades a user's token and its own for a short-lived token the gateway signs, with `act` naming
 * the agent. Checked further in exchange-checks.ts.
 */
const tokenExchange = z.strictObject({
  enabled: z.boolean().default(true),
  /** `iss` of the tokens it signs, and where the metadata (RFC 8414) says the endpoints are: an origin. */
  issuer: httpUrl,
  /** What an exchanged token may be for (`aud`; `audience` or `resource` picks one); default the issuer. */
  audiences: z.array(z.string().min(1)).min(1).optional(),
  /** The longest an exchanged token lives; never past the subject or actor token's own `exp`. */
  lifetime: duration.prefault('15m').refine((ms) => ms >= 1_000 && ms <= 86_400_000, 'lifetime is 1s to 1d').meta(atLeast(1000)),
  /** Refuse an exchange without actor_token (no `act`: a user merely narrowing their own token). */
  require_actor: z.boolean().default(true),
  /** Agents that may act for users: a caller holding `role`, with at most `delegated_roles` of the user's. */
  actors: z.array(exchangeActor).default([]),
  signing: z.strictObject({
    /** `${secret:NAME}`: an EC P-256 private key (PEM) kept in the secrets store; default a key the gateway makes (bouncer.exchange-key). */
    key: z.string().min(1).optional(),
    /** How often the key the gateway makes is replaced (the old one stays published while its tokens live). */
    rotate_every: duration.prefault('30d'),
  }).prefault({}),
})

const telemetry = z.strictObject({
  otlp_endpoint: httpUrl.optional(),
  service_name: z.string().default('bouncer'),
  /** The tracing UI's page for a trace: `{trace_id}` is replaced (the console links each request's trace there). */
  trace_url: z.string().url().refine((url) => url.includes('{trace_id}'), 'must contain {trace_id}').optional(),
  /**
   * Unset: BOUNCER_LOG_LEVEL, else info (createLogger). A default here made it always set, and the
   * README's BOUNCER_LOG_LEVEL was never read by `bouncer serve` (an observability probe).
   */
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
})

export const configSchema = z.strictObject({
  server: server.prefault({}),
  admin: admin.prefault({}),
  issuers: z.array(issuer).default([]),
  roles: z.array(role).default([]),
  policies: z.array(policy).default([]),
  upstreams: z.array(upstream).default([]),
  routes: z.array(route).default([]),
  functions: z.array(fn).default([]),
  datasources: z.array(datasourceSchema).default([]),
  limits: z.array(limit).default([]),
  limits_store: limitsStore.default({ type: 'memory', max_keys: 100_000 }),
  auth_failures: authFailures.optional(),
  audit: audit.prefault({}),
  api_keys: apiKeys.optional(),
  sign_in: signIn.optional(),
  secrets: secrets.optional(),
  assertion: assertion.prefault({}),
  token_exchange: tokenExchange.optional(),
  telemetry: telemetry.prefault({}),
  mcp: mcpSchema({ duration, timer: positiveTimer, glob, httpUrl, headerName, headerValue, method, origin }).optional(),
})

export type Config = z.output<typeof configSchema>
export type ServerConfig = Config['server']
export type AdminConfig = Config['admin']
export type AnyIssuerConfig = Config['issuers'][number]
/** An issuer of bearer tokens (JWTs). */
export type IssuerConfig = Extract<AnyIssuerConfig, { type: 'jwt' }>
/** An issuer of client certificates. */
export type X509IssuerConfig = Extract<AnyIssuerConfig, { type: 'x509' }>
export type TlsConfig = NonNullable<ServerConfig['tls']>
export type IntrospectionConfig = NonNullable<IssuerConfig['introspection']>
export type RoleConfig = Config['roles'][number]
export type TrustRuleConfig = RoleConfig['assumed_by'][number]
export type PolicyConfig = Config['policies'][number]
export type StatementConfig = PolicyConfig['statements'][number]
export type UpstreamConfig = Config['upstreams'][number]
export type RouteConfig = Config['routes'][number]
export type CorsConfig = NonNullable<RouteConfig['cors']>
export type FunctionConfig = Config['functions'][number]
export type { DatasourceConfig, DatasetConfig, DatasetParamConfig, MaskConfig } from './dataset-schema.ts'
export type LimitConfig = Config['limits'][number]
export type LimitsStoreConfig = Config['limits_store']
export type AuditConfig = Config['audit']
export type AuditSinkConfig = AuditConfig['sinks'][number]
export type ApiKeysConfig = NonNullable<Config['api_keys']>
export type ApiKeyStoreConfig = ApiKeysConfig['store']
export type SignInConfig = NonNullable<Config['sign_in']>
export type SessionStoreConfig = SignInConfig['session']['store']
export type SecretsConfig = NonNullable<Config['secrets']>
export type AssertionConfig = Config['assertion']
export type TokenExchangeConfig = NonNullable<Config['token_exchange']>
export type TelemetryConfig = Config['telemetry']
export type McpConfig = NonNullable<Config['mcp']>
export type McpToolConfig = McpConfig['tools'][number]
export type McpServerConfig = McpConfig['servers'][number]
export type McpApprovalConfig = McpConfig['approvals'][number]
export type ClaimConditions = z.output<typeof claimConditions>
export type BalanceStrategy = UpstreamConfig['balance']
export type HealthCheckConfig = NonNullable<UpstreamConfig['health_check']>
export type RetriesConfig = NonNullable<UpstreamConfig['retries']>

/** The issuers of bearer tokens, in file order. */
export function jwtIssuers(config: Pick<Config, 'issuers'>): IssuerConfig[] {
  return config.issuers.filter((issuer): issuer is IssuerConfig => issuer.type === 'jwt')
}

/** The issuers of client certificates, in file order. */
export function x509Issuers(config: Pick<Config, 'issuers'>): X509IssuerConfig[] {
  return config.issuers.filter((issuer): issuer is X509IssuerConfig => issuer.type === 'x509')
}
