// The gateway's own endpoints, added to the router when a config is compiled as routes whose backend
// is built in, ahead of the config's routes: the router matches them like any other, and a config
// route cannot shadow them. Their ids start with `builtin/`, which no config route id can (a route
// id holds no `/`), so the audit log and metrics name them without ever meaning a configured route.
import type { ExchangeEndpoint } from '../agents/index.ts'
import type { CorsPolicy } from '../http/index.ts'
import type { BrowserAnswer, CredentialInput, SignIn } from '../identity/index.ts'
import { documentBackend, nothingServed, sendWhole, type Backend, type InternalDispatch, type RecordAudit, type RequestContext } from '../request/index.ts'
import type { Tracing } from '../telemetry/index.ts'
import type { PublishedJwks } from '../upstream/index.ts'

/** What the built-in endpoints read from the running gateway, handed in at compile time. */
export interface BuiltInSources {
  /** The keys X-Bouncer-Assertion is signed with (the signer changes on reload and rotation). */
  publishedKeys(): PublishedJwks
  /** Runs an MCP tool call's request through the pipeline (gateway/internal-dispatch.ts); bound once the gateway runs. */
  dispatch?: InternalDispatch
  /** Queues an audit record of a tool call the MCP endpoint served itself. */
  audit?: RecordAudit
  /** The gateway's spans (telemetry.otlp_endpoint): a call to an aggregated MCP server's tool has one. */
  tracing?: Tracing | null
}

export interface BuiltInRoute {
  id: string
  path: string
  /** Every method reaches the endpoint, which answers 405 itself: a config route never takes its path. */
  methods: readonly string[]
  backend: Backend
  /** The route's CORS, answered by the pipeline (a public document's). */
  cors?: CorsPolicy
  /** The stages decide for the request a trusted proxy describes, and the backend answers the decision (forward-auth). */
  forwardAuth?: true
}

/** Where the keys of X-Bouncer-Assertion are published, on the gateway listener itself. */
const JWKS_PATH = '/.well-known/jwks.json'
/** Forward-auth (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz): `/*` takes Envoy's path prefix. */
export const FORWARD_AUTH_PATH = '/.bouncer/auth'
const EVERY_METHOD = ['*', 'TRACE', 'TRACK', 'CONNECT']

/** `exchange`: the token exchange's endpoints (token, metadata, keys), when it is enabled. */
export function builtInRoutes(sources: BuiltInSources, exchange: readonly ExchangeEndpoint[] = [], signIn: SignIn | null = null): BuiltInRoute[] {
  const routes: BuiltInRoute[] = [
    { id: 'builtin/jwks', path: JWKS_PATH, methods: EVERY_METHOD, backend: documentBackend(JWKS_PATH, { 'content-type': 'application/jwk-set+json', 'cache-control': 'max-age=60' }, sources.publishedKeys) },
    { id: 'builtin/forward-auth', path: `${FORWARD_AUTH_PATH}/*`, methods: EVERY_METHOD, backend: forwardAuthBackend(), forwardAuth: true },
    ...exchange.map((endpoint) => ({ ...endpoint, methods: EVERY_METHOD })),
  ]
  if (signIn) {
    // sign_in's endpoints (SPEC "Callers, added"): public routes, since they are how a browser gets a session.
    routes.push(
      { id: 'builtin/sign-in', path: signIn.paths.signIn, methods: EVERY_METHOD, backend: browserBackend((input) => signIn.start(input)) },
      { id: 'builtin/sign-in-callback', path: signIn.paths.callback, methods: EVERY_METHOD, backend: browserBackend((input) => signIn.callback(input)) },
      { id: 'builtin/sign-out', path: signIn.paths.signOut, methods: EVERY_METHOD, backend: browserBackend((input) => signIn.signOut(input)) },
    )
  }
  return routes
}

/** What a sign-in endpoint reads of the request: the same facts a credential verifier gets. */
export function browserInput(ctx: Readonly<RequestContext>): CredentialInput {
  return {
    headers: ctx.headers,
    rawHeaders: ctx.req.rawHeaders,
    query: ctx.query,
    socket: ctx.connection,
    method: ctx.method,
    target: ctx.req.url ?? '/',
    secure: ctx.secure,
    viaTrustedProxy: ctx.viaTrustedProxy,
  }
}

/** A sign-in endpoint: its answer (a redirect with cookies, mostly) written as it is. */
function browserBackend(answer: (input: CredentialInput) => Promise<BrowserAnswer>): Backend {
  return {
    upstream: null,
    async serve(ctx, exchange) {
      const reply = await answer(browserInput(ctx))
      // Who signed in or out, for the audit record (a public route authenticates no one).
      const served = nothingServed()
      if (reply.caller) served.caller = { ...reply.caller, roles: [] }
      return sendWhole(ctx, exchange, reply.status, reply.headers, reply.body, served)
    },
  }
}

/**
 * The answer to an allowed forward-auth request: 200, no body, and the headers the gateway would
 * have sent upstream for it (X-Bouncer-Assertion, the upstream's configured headers), which the
 * pipeline put in `extraHeaders`, for the proxy to copy onto the request it forwards.
 */
function forwardAuthBackend(): Backend {
  return {
    upstream: null,
    authenticatesCallers: true,
    async serve(ctx, exchange) {
      const served = nothingServed()
      served.status = 200
      if (exchange.beforeEnd) await exchange.beforeEnd(served)
      const res = ctx.res
      const extra = exchange.extraHeaders
      if (extra) for (let i = 0; i < extra.length; i += 2) res.setHeader(extra[i] as string, extra[i + 1] as string)
      res.writeHead(200, { 'content-length': 0, 'cache-control': 'no-store', 'x-request-id': ctx.id })
      res.end()
      return served
    },
  }
}

