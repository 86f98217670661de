// POST /oauth2/token: OAuth 2.0 Token Exchange (RFC 8693) for agents acting on behalf of users.
//
// An agent sends the user's token (subject_token) and its own (actor_token); both are verified by
// the gateway's normal verifiers, as bearer tokens on a route would be. The answer is a token the
// gateway signs: `sub` the user, `act` the agent (RFC 8693 §4.1), `roles` what the exchange
// granted — the requested roles (`scope`, space-separated role names) that the user holds and the
// agent may act with (token_exchange.actors) — and `exp` the earliest of the requested lifetime
// (`expires_in`), token_exchange.lifetime and the user's own token's `exp`. The agent's own roles
// travel in `act.roles`: a call made with the token is allowed only where both sides' roles allow
// (access/evaluate.ts).
//
// Refusals are the token endpoint's codes in the one error taxonomy (errors/codes.ts), answered
// in OAuth's JSON shape (RFC 6749 §5.2).
import { randomUUID } from 'node:crypto'
import type { TokenExchangeConfig } from '../../config/index.ts'
import { GatewayError, truncateClientValue, type ErrorCode } from '../../errors/index.ts'
import { nothingServed, type Backend, type Identity, type RequestContext, type Served } from '../../request/index.ts'
import { audiencesOf, issuerOf } from './issuer.ts'
import type { ExchangeKeys } from './keys.ts'
import { readForm } from './form.ts'

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
/** The token types a subject or actor token may be (both are JWT access tokens to the gateway). */
const INPUT_TOKEN_TYPES: ReadonlySet<string> = new Set([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE])

/**
 * Claims of the user's token not carried over: the exchange states these itself (or, like `cnf`
 * and `nonce`, they bind the user's token to something the new token is not bound to).
 */
const RESTATED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'act', 'may_act', 'scope', 'scp', 'roles', 'client_id', 'azp', 'idp', 'cnf', 'nonce', 'auth_time', 'sid', 'at_hash', 'c_hash',
])

export interface TokenEndpointOptions {
  exchange: TokenExchangeConfig
  /** The runtime's bearer token verifier: a subject or actor token is checked as a route would check it. */
  verify(token: string): Promise<Identity>
  rolesFor(identity: Identity): readonly string[]
  /** The signing keys in force (they change on reload and rotation); null before they exist. */
  keys(): ExchangeKeys | null
  /** server.max_token_bytes: an exchanged token must fit where it will be presented. */
  maxTokenBytes: number
  now?: () => number
}

function refuse(code: ErrorCode, detail: string): GatewayError {
  return new GatewayError(code, { detail })
}

export function tokenEndpoint(options: TokenEndpointOptions): Backend {
  const { exchange } = options
  const now = options.now ?? Date.now
  const issuer = issuerOf(exchange)
  const audiences = audiencesOf(exchange)

  /** A subject or actor token, verified; a refusal names which token and why (invalid_grant). */
  async function verified(which: 'subject_token' | 'actor_token', token: string): Promise<Identity> {
    let identity: Identity
    try {
      identity = await options.verify(token)
    } catch (err) {
      // The provider being unreachable is not the token's fault: 503 stays 503.
      if (err instanceof GatewayError && err.status === 401) throw refuse('invalid_grant', `${which}: ${err.detail}`)
      throw err
    }
    if (identity.grantedRoles !== undefined) {
      throw refuse('invalid_grant', `${which} is a token the gateway issued by token exchange: exchange the ${which === 'subject_token' ? 'user\'s' : 'agent\'s'} own token`)
    }
    if (identity.actor) throw refuse('invalid_grant', `${which} already names an actor (act): exchange the ${which === 'subject_token' ? 'user\'s' : 'agent\'s'} own token`)
    return identity
  }

  async function issue(params: Map<string, string>): Promise<{ answer: Record<string, unknown>; caller: NonNullable<Served['caller']> }> {
    const grant = params.get('grant_type')
    if (grant === undefined) throw refuse('invalid_request', 'grant_type is missing.')
    if (grant !== TOKEN_EXCHANGE_GRANT) throw refuse('unsupported_grant_type', `Only ${TOKEN_EXCHANGE_GRANT} is supported here.`)
    const subjectToken = tokenParameter(params, 'subject_token')
    if (subjectToken === undefined) throw refuse('invalid_request', 'subject_token is missing: the token of the user the agent acts for.')
    const actorToken = tokenParameter(params, 'actor_token')
    if (actorToken === undefined && exchange.require_actor) {
      throw refuse('invalid_request', 'actor_token is missing: the agent\'s own token is required (token_exchange.require_actor).')
    }
    const requestedType = params.get('requested_token_type')
    if (requestedType !== undefined && !INPUT_TOKEN_TYPES.has(requestedType)) throw refuse('invalid_request', `requested_token_type must be ${ACCESS_TOKEN_TYPE}.`)
    const audience = audienceOf(params)
    const requestedSeconds = expiresIn(params)
    const scope = params.get('scope')
    const requested = scope === undefined ? null : scope.split(' ').filter((s) => s !== '')
    if (requested !== null && requested.length === 0) throw refuse('invalid_scope', 'scope is empty: name the roles the token should carry, or leave it out for all the exchange allows.')

    const subject = await verified('subject_token', subjectToken)
    const actor = actorToken === undefined ? null : await verified('actor_token', actorToken)
    const userRoles = options.rolesFor(subject)
    const actorRoles = actor ? options.rolesFor(actor) : []
    const delegable = actor ? delegableRoles(actor, actorRoles, userRoles) : userRoles
    const available = userRoles.filter((role) => delegable.includes(role))
    if (requested !== null) {
      for (const role of requested) {
        if (!userRoles.includes(role)) throw refuse('invalid_scope', `Role "${truncateClientValue(role, 64)}" is not one the user holds (${listed(userRoles)}).`)
        if (!delegable.includes(role)) throw refuse('invalid_scope', `Role "${truncateClientValue(role, 64)}" is not one agent "${actor?.sub}" may act with (${listed(delegable)}).`)
      }
    }
    const granted = requested === null ? available : available.filter((role) => requested.includes(role))
    if (granted.length === 0) {
      throw refuse('invalid_scope', `No role is left to grant: the user holds ${listed(userRoles)}${actor ? `, and agent "${actor.sub}" may act with ${listed(delegable)}` : ''}.`)
    }

    const issuedAt = Math.floor(now() / 1000)
    // An introspected token may have no exp (expiresAt 0): the provider vouched for it, and lifetime bounds the new one.
    const remaining = subject.expiresAt > 0 ? subject.expiresAt - issuedAt : Infinity
    if (remaining <= 0) throw refuse('invalid_grant', 'subject_token: the token has expired.')
    const lifetime = Math.min(Math.floor(exchange.lifetime / 1000), requestedSeconds ?? Infinity, remaining)
    const claims: Record<string, unknown> = {
      ...carriedClaims(subject),
      iss: issuer,
      sub: subject.sub,
      aud: audience,
      iat: issuedAt,
      exp: issuedAt + lifetime,
      jti: randomUUID(),
      // RFC 8693 §4.3: the client that asked for the token; the agent, when one acts.
      client_id: actor ? (actor.clientId ?? actor.sub) : (subject.clientId ?? subject.sub),
      idp: subject.iss,
      roles: granted,
      scope: granted.join(' '),
      ...(actor ? { act: { sub: actor.sub, iss: actor.iss, ...(actor.clientId ? { client_id: actor.clientId } : {}), roles: actorRoles } } : {}),
    }
    const keys = options.keys()
    if (!keys) throw new GatewayError('internal_error', { detail: 'The token exchange has no signing key.' })
    const token = keys.sign(claims)
    if (token.length > options.maxTokenBytes) {
      throw refuse('invalid_grant', `subject_token: its claims make the exchanged token ${token.length} bytes long, more than server.max_token_bytes (${options.maxTokenBytes}) accepts.`)
    }
    // The audit record of the exchange names whom the token is for and who acts, with what was granted.
    const act = claims.act as Record<string, unknown> | undefined
    const caller = {
      identity: Object.freeze({
        ...subject,
        grantedRoles: granted,
        actor: actor && act ? { issuerName: actor.issuerName, iss: actor.iss, sub: actor.sub, clientId: actor.clientId, roles: actorRoles, claims: act } : null,
      }),
      credential: 'bearer' as const,
      roles: granted,
    }
    return { answer: { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: lifetime, scope: claims.scope }, caller }
  }

  /** The user roles the agent may act with: the delegated_roles of every actors entry its roles name. */
  function delegableRoles(actor: Identity, actorRoles: readonly string[], userRoles: readonly string[]): readonly string[] {
    const entries = exchange.actors.filter((entry) => actorRoles.includes(entry.role))
    if (entries.length === 0) {
      throw refuse('unauthorized_client', `Agent "${actor.sub}" (issuer "${actor.issuerName}") may not act for users: its roles (${listed(actorRoles)}) name no token_exchange.actors entry.`)
    }
    const names = entries.flatMap((entry) => entry.delegated_roles)
    return names.includes('*') ? userRoles : userRoles.filter((role) => names.includes(role))
  }

  function audienceOf(params: Map<string, string>): string {
    const audience = params.get('audience')
    const resource = params.get('resource')
    if (audience !== undefined && resource !== undefined && audience !== resource) {
      throw refuse('invalid_target', 'audience and resource name different targets: give one.')
    }
    const wanted = audience ?? resource ?? (audiences[0] as string)
    if (!audiences.includes(wanted)) throw refuse('invalid_target', `The token cannot be for "${truncateClientValue(wanted, 80)}": token_exchange.audiences lists ${audiences.join(', ')}.`)
    return wanted
  }

  return {
    upstream: null,
    async serve(ctx, pipelineExchange) {
      if (ctx.method !== 'POST') throw new GatewayError('method_not_allowed', { detail: 'The token endpoint answers POST (RFC 6749 §3.2).', headers: { allow: 'POST' } })
      const { params, bytes } = await readForm(ctx as RequestContext)
      const issued = await issue(params)
      const answer = JSON.stringify(issued.answer)
      const served = nothingServed()
      served.status = 200
      served.caller = issued.caller
      served.bytesIn = bytes
      served.bytesOut = Buffer.byteLength(answer)
      if (pipelineExchange.beforeEnd) await pipelineExchange.beforeEnd(served)
      // RFC 6749 §5.1: a token response is never cached.
      ctx.res.writeHead(200, { 'content-type': 'application/json', 'content-length': served.bytesOut, 'cache-control': 'no-store', pragma: 'no-cache', 'x-request-id': ctx.id })
      ctx.res.end(answer)
      return served
    },
  }
}

function tokenParameter(params: Map<string, string>, name: 'subject_token' | 'actor_token'): string | undefined {
  const token = params.get(name)
  if (token === undefined) {
    if (params.has(`${name}_type`)) throw refuse('invalid_request', `${name}_type is given without ${name}.`)
    return undefined
  }
  const type = params.get(`${name}_type`)
  if (type === undefined) throw refuse('invalid_request', `${name}_type is missing (RFC 8693 §2.1): ${ACCESS_TOKEN_TYPE}.`)
  if (!INPUT_TOKEN_TYPES.has(type)) throw refuse('invalid_request', `${name}_type "${truncateClientValue(type, 80)}" is not supported: the gateway exchanges access tokens (${ACCESS_TOKEN_TYPE}).`)
  return token
}

/** `expires_in`: the lifetime the client asks for, in seconds (it only ever shortens the token's life). */
function expiresIn(params: Map<string, string>): number | null {
  const text = params.get('expires_in')
  if (text === undefined) return null
  if (!/^[1-9]\d{0,8}$/.test(text)) throw refuse('invalid_request', 'expires_in is a positive number of seconds.')
  return Number(text)
}

/** The user's own claims that are not the exchange's to state (tenant, groups…): statement conditions read them. */
function carriedClaims(subject: Identity): Record<string, unknown> {
  const carried: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(subject.claims)) if (!RESTATED_CLAIMS.has(name)) carried[name] = value
  return carried
}

function listed(roles: readonly string[]): string {
  return roles.length === 0 ? 'none' : roles.join(', ')
}
