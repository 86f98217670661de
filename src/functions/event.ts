// The event a handler gets: API Gateway's HTTP API payload format 2.0 ("Working with AWS Lambda proxy
// integrations for HTTP APIs"), field for field and in its order, so a handler written for an HTTP
// API reads it unchanged. Where AWS has a value Bouncer does not (an account, a stage), it says so
// plainly (README "Functions"). What the gateway adds sits under requestContext.authorizer.bouncer.
//
// The headers are the ones an upstream would get (README "What reaches the upstream"): the managed
// ones and the API key header removed, Authorization only with forward_authorization (and only a
// verified bearer token, or a public route's), X-Forwarded-For/-Proto, X-Request-Id
// and traceparent (with tracestate) written by the gateway. Linear in the request's headers, query and claims.
import { isUtf8 } from 'node:buffer'
import { foldHeaderName, vouchedHost, type HostAllowList } from '../http/index.ts'
import { forwardableAuthorization, type Identity, type RequestContext } from '../request/index.ts'
import { traceparentOf } from '../telemetry/index.ts'

/** What a function route fixes at compile time for its events. */
export interface EventSettings {
  /** `POST /reports/{id}/refresh`, `ANY /files/{proxy+}`: the route in API Gateway's notation. */
  routeKey: string
  forwardAuthorization: boolean
  /** server.hosts: the Hosts a handler may build links from (host, requestContext.domainName). */
  publicHosts: HostAllowList
  /** Cookies that are the gateway's credentials (the sign-in session's): never in the event. Absent: none. */
  withheldCookies?: ReadonlySet<string>
  /** Headers that are the gateway's credentials (api_keys.header), folded (foldHeaderName): never in the event, nor a look-alike. Absent: none. */
  withheldHeaders?: ReadonlySet<string>
}

export interface PayloadV2Event {
  version: '2.0'
  routeKey: string
  rawPath: string
  rawQueryString: string
  cookies?: string[]
  headers: Record<string, string>
  queryStringParameters?: Record<string, string>
  requestContext: {
    accountId: string
    apiId: string
    authorizer?: {
      jwt: { claims: Record<string, string>; scopes: string[] | null }
      bouncer: { roles: string[]; issuer: string; subject: string; clientId: string | null; credential: string | null; claims: Readonly<Record<string, unknown>> }
    }
    domainName: string
    domainPrefix: string
    http: { method: string; path: string; protocol: string; sourceIp: string; userAgent: string }
    requestId: string
    routeKey: string
    stage: string
    time: string
    timeEpoch: number
  }
  body?: string
  pathParameters?: Record<string, string>
  isBase64Encoded: boolean
}

/** The route in API Gateway's notation: `{name}` for `:name`, `{proxy+}` for the trailing `*`; ANY for several methods. */
export function routeKeyOf(methods: readonly string[], path: string): string {
  const key = path.split('/').map((segment) => (segment === '*' ? '{proxy+}' : segment.startsWith(':') ? `{${segment.slice(1)}}` : segment)).join('/')
  return `${methods.length === 1 && methods[0] !== '*' ? methods[0] : 'ANY'} ${key}`
}

export function payloadV2Event(ctx: Readonly<RequestContext>, settings: EventSettings, body: Buffer | null): PayloadV2Event {
  const { headers, cookies } = eventHeaders(ctx, settings)
  const domainName = headers.host ?? ''
  const query = ctx.query === '' ? undefined : queryParameters(ctx.query)
  const pathParameters = pathParametersOf(ctx.params, ctx.rest)
  const text = body !== null && body.length > 0 && isTextBody(headers['content-type'], body)
  return {
    version: '2.0',
    routeKey: settings.routeKey,
    rawPath: ctx.path,
    rawQueryString: ctx.query,
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(query ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: 'bouncer',
      apiId: 'bouncer',
      ...(ctx.identity ? { authorizer: authorizerOf(ctx.identity, ctx.roles, ctx.credential) } : {}),
      domainName,
      domainPrefix: domainName.split('.')[0] as string,
      http: { method: ctx.method, path: ctx.path, protocol: `HTTP/${ctx.req.httpVersion}`, sourceIp: ctx.clientIp, userAgent: ctx.headers?.userAgent ?? '' },
      requestId: ctx.id,
      routeKey: settings.routeKey,
      stage: '$default',
      time: clfTime(ctx.startedAt),
      timeEpoch: ctx.startedAt,
    },
    ...(body !== null && body.length > 0 ? { body: text ? body.toString('utf8') : body.toString('base64') } : {}),
    ...(pathParameters ? { pathParameters } : {}),
    isBase64Encoded: body !== null && body.length > 0 && !text,
  }
}

/**
 * Lower-case names, repeated headers joined with commas (format 2.0 has no multi-value headers),
 * the Cookie headers split into `cookies` instead.
 */
function eventHeaders(ctx: Readonly<RequestContext>, settings: EventSettings): { headers: Record<string, string>; cookies: string[] } {
  const headers: Record<string, string> = {}
  const cookies: string[] = []
  const inbound = ctx.headers
  const add = (name: string, value: string) => joinValue(headers, name, value)
  if (inbound) {
    const forward = inbound.forward
    for (let i = 0; i < forward.length; i += 2) {
      const name = forward[i] as string
      const value = forward[i + 1] as string
      if (settings.withheldHeaders !== undefined && settings.withheldHeaders.size > 0 && settings.withheldHeaders.has(foldHeaderName(name))) continue
      if (name === 'cookie') {
        for (const cookie of value.split(';')) {
          const trimmed = cookie.trim()
          // The name trimmed, as the gateway's own cookie reader does: `bouncer_session =v` is the
          // session there, so it must be withheld here too (probe finding).
          const eq = trimmed.indexOf('=')
          if (trimmed !== '' && !settings.withheldCookies?.has((eq === -1 ? trimmed : trimmed.slice(0, eq)).trim())) cookies.push(trimmed)
        }
      } else {
        add(name, value)
      }
    }
    if (settings.forwardAuthorization) {
      const authorization = forwardableAuthorization(ctx.credential, inbound)
      if (authorization !== undefined) headers.authorization = authorization
    }
  }
  const host = hostOf(ctx, settings.publicHosts)
  if (host !== undefined) headers.host = host
  headers['x-forwarded-for'] = ctx.forwardedFor
  // As upstream/request.ts: a client on a TLS listener came over https.
  headers['x-forwarded-proto'] = ctx.viaTrustedProxy && inbound?.forwardedProto ? inbound.forwardedProto : ctx.secure ? 'https' : 'http'
  headers['x-request-id'] = ctx.id
  if (ctx.trace) {
    headers.traceparent = traceparentOf(ctx.trace)
    // As upstream/request.ts: the vendors' state goes with the trace (it was lost here: a probe).
    if (ctx.trace.tracestate) headers.tracestate = ctx.trace.tracestate
  }
  return { headers, cookies }
}

/** Handlers build links from it: only a host the gateway vouches for (as for upstreams). */
function hostOf(ctx: Readonly<RequestContext>, publicHosts: HostAllowList): string | undefined {
  const inbound = ctx.headers
  return inbound ? vouchedHost(inbound.host, inbound.forwardedHost || undefined, ctx.viaTrustedProxy, publicHosts) : undefined
}

/** Decoded, repeated names joined with commas (AWS: "Duplicate query strings are combined with commas"). */
function queryParameters(query: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of new URLSearchParams(query)) joinValue(out, name, value)
  return out
}

/**
 * Sets `name`, or joins it to the value already there with a comma, as an own property: a header or
 * parameter named constructor read Object's function, and `__proto__` set the prototype and was
 * lost (probe finding). Plain objects, not null-prototype ones: V8 keeps those in dictionary mode,
 * and the function bench lost 15% to them (bench/README.md "Profiling").
 */
function joinValue(target: Record<string, string>, name: string, value: string): void {
  const earlier = Object.hasOwn(target, name) ? target[name] : undefined
  const joined = earlier === undefined ? value : `${earlier},${value}`
  if (name === '__proto__') Object.defineProperty(target, name, { value: joined, enumerable: true, writable: true, configurable: true })
  else target[name] = joined
}

/** The route's `:params`, decoded; a trailing `*` as `proxy` (API Gateway's `{proxy+}`). */
function pathParametersOf(params: Record<string, string>, rest: readonly string[]): Record<string, string> | undefined {
  let out: Record<string, string> | undefined
  for (const name in params) {
    out ??= {}
    out[name] = decoded(params[name] as string)
  }
  if (rest.length > 0) {
    out ??= {}
    out.proxy = rest.map(decoded).join('/')
  }
  return out
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * API Gateway hands a handler the body as text for text/*, application/json, application/xml and
 * application/javascript, base64 otherwise (a form post and a missing Content-Type included). Here
 * also a body that is not UTF-8, or that declares another charset, goes as base64: as text it
 * would be changed on the way.
 */
const TEXT_TYPES = new Set(['application/json', 'application/xml', 'application/javascript'])

function isTextBody(contentType: string | undefined, body: Buffer): boolean {
  if (contentType === undefined) return false
  const [type = '', ...parameters] = contentType.split(';')
  const media = type.trim().toLowerCase()
  if (!media.startsWith('text/') && !TEXT_TYPES.has(media)) return false
  for (const parameter of parameters) {
    const [name = '', value = ''] = parameter.split('=')
    if (name.trim().toLowerCase() === 'charset' && value.trim().replace(/^"|"$/g, '').toLowerCase() !== 'utf-8') return false
  }
  return isUtf8(body)
}

/**
 * requestContext.authorizer as an HTTP API's JWT authorizer fills it: every claim a string (arrays
 * as `[a b]`, objects as JSON, null claims left out), scopes from `scp` or `scope`. The claims as
 * they are, the roles and who the caller is sit beside it under `bouncer`.
 */
function authorizerOf(identity: Identity, roles: readonly string[], credential: string | null): NonNullable<PayloadV2Event['requestContext']['authorizer']> {
  const claims: Record<string, string> = {}
  for (const name in identity.claims) {
    const value = identity.claims[name]
    if (value !== null && value !== undefined) joinValue(claims, name, claimText(value)) // a `__proto__` claim kept, as for headers
  }
  return {
    jwt: { claims, scopes: scopesOf(identity.claims) },
    bouncer: { roles: [...roles], issuer: identity.issuerName, subject: identity.sub, clientId: identity.clientId, credential, claims: identity.claims },
  }
}

function claimText(value: unknown): string {
  if (typeof value === 'string') return value
  if (Array.isArray(value)) return `[${value.map((item) => (typeof item === 'string' ? item : JSON.stringify(item))).join(' ')}]`
  return JSON.stringify(value)
}

function scopesOf(claims: Readonly<Record<string, unknown>>): string[] | null {
  for (const name of ['scp', 'scope']) {
    const value = claims[name]
    if (Array.isArray(value) && value.length > 0) return value.map(String)
    if (typeof value === 'string' && value.trim() !== '') return value.trim().split(/\s+/)
  }
  return null
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const two = (n: number) => (n < 10 ? `0${n}` : String(n))

/** `12/Mar/2020:19:03:58 +0000`, as requestContext.time. */
function clfTime(epochMs: number): string {
  const d = new Date(epochMs)
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`
}
