// The request headers the gateway manages (SPEC "On the wire"): one list, read by the request
// inspection (what a client's request may carry on), the upstream request (what the gateway
// writes) and the config check (what an upstream's `headers` may not set).
//
// Names are compared as upstream stacks read them, not only as HTTP spells them: CGI, WSGI, PHP,
// Rack and nginx with `underscores_in_headers` turn `-` into `_` and ignore case, so a client's
// `X_Bouncer_Assertion` or `X-Forwarded_For` reaches the application as the header the gateway
// manages (the header smuggling of oauth2-proxy's CVE-2025-64484, also fixed in authentik and
// Traefik). Every character other than a letter or a digit is therefore read as `-` ("folded")
// before the comparison; a header whose folded name is managed is removed, never interpreted.

/**
 * RFC 9110 §7.6.1: headers about one connection, relayed in neither direction. The proxy
 * authentication fields are the next inbound proxy's (§11.7), Proxy-Authentication-Info too
 * (RFC 7615 §4): an upstream behind its own proxy had its hop's nextnonce relayed to the client.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'proxy-authentication-info', 'http2-settings',
])

/**
 * Fields a connection option may not name (RFC 9110 §7.6.1: never one meant for every recipient of
 * the content). A request that names one is refused (request-headers.ts): the gateway judges it by
 * them, and a JSON POST sent on untyped was read as a form by Rack and Laravel, its `_method=DELETE`
 * run (a probe). An answer's are kept, as if not named: removed, a `text/plain` answer reached the
 * client untyped, which a browser sniffs, and `<script>` in it ran as HTML (a probe).
 */
export const NEVER_HOP_BY_HOP: readonly string[] = ['content-type', 'content-length']

/**
 * The fields a Connection header names (RFC 9110 §7.6.1), lower-cased, each for this hop only; null
 * when it names none but its connection options `close` and `keep-alive`, what nearly every
 * message carries (no set is made for it). Both directions read it: the request's and the answer's.
 */
export function connectionNamed(connection: string | readonly string[]): ReadonlySet<string> | null {
  let named: Set<string> | null = null
  for (const token of (typeof connection === 'string' ? connection : connection.join(',')).split(',')) {
    const name = token.trim().toLowerCase()
    if (name !== '' && name !== 'close' && name !== 'keep-alive') (named ??= new Set()).add(name)
  }
  return named
}

/** Written afresh by the gateway on every forwarded request: a client's copy would be a forgery. */
const GATEWAY_WRITTEN = [
  'x-request-id', 'traceparent', 'tracestate',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
  'x-bouncer-assertion',
]

/** Read from the client's request but never relayed as sent (the upstream's Host comes from its URL). */
const CONSUMED = ['host', 'expect', 'authorization']

/**
 * RFC 3875's meta-variables (but CONTENT_TYPE and CONTENT_LENGTH, real fields), folded. gunicorn
 * takes `SCRIPT_NAME` and `PATH_INFO` headers from a trusted proxy (forwarder_headers, by default
 * from 127.0.0.1: a gateway beside it) and routes on the path without that prefix, and `REMOTE_USER`
 * where configured: `GET /public/admin/users` with `SCRIPT_NAME: /public` ran the app's
 * `/admin/users` behind a public route (an adversarial probe). Flask's ReverseProxied recipe does the
 * same with `X-Script-Name`.
 */
const CGI_VARIABLES = [
  'auth-type', 'gateway-interface', 'path-info', 'path-translated', 'query-string', 'remote-addr', 'remote-host',
  'remote-ident', 'remote-user', 'request-method', 'script-name', 'server-name', 'server-port', 'server-protocol', 'server-software',
]

/** Removed and never written: rival client-address headers, path or method overrides some
 * frameworks obey (IIS, Symfony, Express method-override, Envoy), and RFC 9440's client certificate
 * fields, which an origin believes from the proxy that terminated TLS (§3): the gateway, when it asks
 * for certificates, so a client's own copy would pass upstream as the gateway's word. */
const REMOVED = [
  'forwarded', 'x-real-ip', 'x-client-ip', 'client-cert', 'client-cert-chain',
  // What CDNs and load balancers write as the caller's address, and applications written behind
  // them read (Cloudflare, Akamai, Fastly, Rails' Client-IP, npm's request-ip): a client's own would
  // name any address it liked (the front-door probe).
  'cf-connecting-ip', 'cf-connecting-ipv6', 'true-client-ip', 'fastly-client-ip', 'x-cluster-client-ip', 'client-ip',
  'x-forwarded', 'forwarded-for', 'x-originating-ip',
  'x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-original-method', 'x-envoy-original-path',
  'x-http-method-override', 'x-http-method', 'x-method-override',
  ...CGI_VARIABLES, 'x-script-name',
]

/**
 * Who the caller is, as other identity-aware proxies tell the upstreams behind them, and the client
 * certificate as the proxy that terminated TLS hands it on: an application migrated from behind
 * one still believes them, so a client's copy would name anyone it liked. Removed from every peer,
 * a trusted proxy included (X-Bouncer-Assertion says who the caller is); an upstream's configured
 * `headers` may set one. Names here, families in MANAGED_FAMILY; X-Forwarded-User, -Email, -Groups,
 * -Access-Token and Envoy's X-Forwarded-Client-Cert are the x-forwarded- family's, Remote-User
 * (Django's HTTP_REMOTE_USER, Authelia's) a CGI variable's.
 */
const OTHER_PROXIES = [
  'remote-groups', 'remote-email', 'remote-name', // Authelia
  'x-remote-user', 'x-remote-group', // Apache and nginx auth_request, the Kubernetes API's authenticating proxy
  'x-goog-iap-jwt-assertion', // Google IAP
  'x-arr-clientcert', // Azure App Service
  'teleport-jwt-assertion', // Teleport
  'x-userinfo', 'x-id-token', // Kong and APISIX OpenID Connect
  'x-credential-identifier', 'x-anonymous-consumer', // Kong
  'x-ssl-cert', 'x-ssl-issuer', 'x-client-verify', 'x-client-dn', 'x-client-s-dn', 'x-client-i-dn', // client certificates (HAProxy, nginx)
]

/**
 * Whole families the gateway owns, or removes as another proxy's identity headers (OTHER_PROXIES):
 * any member a client sends is removed. One anchored pattern, so a name outside them costs one test
 * whatever their number; `x-bouncer-` first, and isReservedForConfig reads it alone.
 */
const MANAGED_PREFIXES = ['x-bouncer-', 'x-forwarded-'] as const
const OTHER_PROXY_PREFIXES = [
  'x-auth-request-', // oauth2-proxy
  'x-remote-extra-', // the Kubernetes API's authenticating proxy
  'x-webauth-', // Grafana's auth proxy
  'x-pomerium-', // Pomerium
  'x-authentik-', // authentik
  'x-vouch-', // Vouch Proxy
  'tailscale-user-', // Tailscale Serve
  'x-consumer-', 'x-authenticated-', // Kong
  'x-amzn-oidc-', 'x-amzn-mtls-', // AWS ALB
  'x-ms-client-principal', 'x-ms-token-', // Azure App Service
  'cf-access-', 'cf-client-cert-', // Cloudflare Access, Cloudflare mTLS
  'x-goog-authenticated-user-', // Google IAP
  'x-ssl-client-', 'ssl-client-', 'x-client-cert', // client certificates (HAProxy, nginx, ingress-nginx, Google's load balancer)
]
const MANAGED_FAMILY = new RegExp(`^(?:${[...MANAGED_PREFIXES, ...OTHER_PROXY_PREFIXES].join('|')})`)

/** Lower-case names a client's request never carries on to an upstream as sent. */
export const MANAGED_REQUEST_HEADERS: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...GATEWAY_WRITTEN, ...CONSUMED, ...REMOVED, ...OTHER_PROXIES])

/**
 * RFC 9110 §7.6.3: a proxy MUST add Via to every message it forwards, after the entries it came
 * with (a client's Via passes on, and this one is sent as a field line after it, which reads as the
 * list's last member, §5.3), naming the protocol the message was received in. The gateway's own
 * answers (a 401, a 502) are no forwarded message and carry none. `bouncer` is a pseudonym, as
 * §7.6.3 allows: neither a host name nor a version is disclosed. Constants: nothing is built per
 * request.
 */
export const VIA_HTTP_1_1 = '1.1 bouncer'

/**
 * The Via entries the gateway writes in what it forwards, by the protocol the request came in, each
 * with `mark`: `bouncer` and a comment holding a token of the process (every worker's, instance/
 * own-keys.ts). A loop is counted by the mark (upstream/request.ts): counting any entry that named
 * `bouncer`, a client that sent eight of them had its own request refused as a forwarding loop, an
 * upstream error (a probe). The answers' entry (VIA_HTTP_1_1) has no token: a client never sees it.
 * Built once for the process: nothing per request.
 */
export interface ViaEntries {
  readonly http10: string
  readonly http11: string
  readonly http2: string
  /** What each of them holds, and no entry a client writes without the token. */
  readonly mark: string
  /** The token alone: an answer's header that holds it is withheld (upstream/response.ts), as an echoed credential is. */
  readonly token: string
}

export function viaEntries(token: string): ViaEntries {
  const mark = `bouncer (${token})`
  return Object.freeze({ http10: `1.0 ${mark}`, http11: `1.1 ${mark}`, http2: `2 ${mark}`, mark, token })
}

/**
 * What an upstream's configured `headers` may not set: the connection's framing and what the
 * gateway writes, and Expect, which it answers itself and its HTTP client (undici) refuses to send:
 * accepted, every request to the upstream failed with 502 "failed mid-exchange" (a probe).
 */
const RESERVED_FOR_CONFIG: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'host', 'content-length', 'expect', 'forwarded', 'via', ...GATEWAY_WRITTEN])

const NEEDS_FOLDING = /[^a-z0-9-]/
const FOLDED = /[^a-z0-9-]/g

/** A lower-case header name as a folding upstream reads it: `x_forwarded.for` → `x-forwarded-for`. */
export function foldHeaderName(name: string): string {
  return NEEDS_FOLDING.test(name) ? name.replace(FOLDED, '-') : name
}

/** A name in a managed family, or one to fold: one test, which nearly every name fails. */
const FAMILY_OR_FOLDING = new RegExp(`${MANAGED_FAMILY.source}|[^a-z0-9-]`)

/**
 * For a lower-case name not in MANAGED_REQUEST_HEADERS: whether the gateway still owns it, as a
 * member of a managed family or as a managed name once folded. Runs for every header of every
 * request: a name of letters, digits and `-` outside the families (nearly all) costs one regex test
 * and allocates nothing (≈ 26 ns a name with the Set lookup before it, 33 ns when the two families
 * were two prefix checks and a test: bench/managed-headers.ts on Node 24); only other names are folded.
 */
export function isManagedVariant(name: string): boolean {
  if (!FAMILY_OR_FOLDING.test(name)) return false
  if (MANAGED_FAMILY.test(name)) return true
  const folded = name.replace(FOLDED, '-')
  return MANAGED_REQUEST_HEADERS.has(folded) || MANAGED_FAMILY.test(folded)
}

/** Whether an upstream's configured header (any case) would set what the gateway owns. */
export function isReservedForConfig(name: string): boolean {
  const folded = foldHeaderName(name.toLowerCase())
  return RESERVED_FOR_CONFIG.has(folded) || folded.startsWith(MANAGED_PREFIXES[0])
}
