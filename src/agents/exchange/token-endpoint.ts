// POST /oauth2/token: OAuth 2.0 Token Exchange (RFC 8693) for agents acting on behalf of users.
//
// An agent sends the user's token (subject_token) and its own (actor_token); both are verified by
// the gateway's normal verifiers, as bearer tokens on a route would be. The answer is a token the
// gateway signs: `sub` the user, `act` the agent (RFC 8693 §4.1), `roles` what the exchange
// granted — the requested roles (`scope`, space-separated role names) that the user holds and the
// agent may act with (token_exchange.actors) —, the user's own claims (those it states itself
// under `idp_claims`), and `exp` the earliest of the requested lifetime (`expires_in`),
// token_exchange.lifetime, the user's and the agent's own tokens' `exp`, and, for a token checked by introspection
// (the user's or the agent's), its issuer's introspection.cache. The agent's own roles travel in
// `act.roles`, its own token's claims beside them (for its statements' conditions): a call made
// with the token is allowed only where both sides' roles allow
// (access/evaluate.ts).
//
// Refusals are the token endpoint's codes in the one error taxonomy (errors/codes.ts), answered
// in OAuth's JSON shape (RFC 6749 §5.2).
import { randomUUID } from 'node:crypto'
import type { TokenExchangeConfig } from '../../config/index.ts'
import { GatewayError, truncateClientValue, type ErrorCode } from '../../errors/index.ts'
import { API_KEY_PREFIX } from '../../http/index.ts'
import { IDP_CLAIMS, MAX_JSON_DEPTH, nestsTooDeep, splitUserClaims } from '../../identity/index.ts'
import { nothingServed, type Backend, type Identity, type RequestContext, type Served } from '../../request/index.ts'
import { audiencesOf, issuerOf } from './issuer.ts'
import type { ExchangeKeys } from './keys.ts'
import { readForm } from './form.ts'

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
/**
 * The token types a subject or actor token may be (both are JWT access tokens to the gateway), and
 * those a client may ask for: the token issued is both, an access token that is a JWT (typ at+jwt).
 */
const JWT_ACCESS_TOKEN_TYPES: ReadonlySet<string> = new Set([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE])

export interface TokenEndpointOptions {
  exchange: TokenExchangeConfig
  /**
   * The runtime's bearer token verifier: a subject or actor token is checked as a route would check
   * it, auth_failures included (`clientIp`, the caller's address, is held back and counted).
   */
  verify(token: string, clientIp: string): Promise<Identity>
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
  async function verified(which: 'subject_token' | 'actor_token', token: string, clientIp: string): Promise<Identity> {
    // The routes never take an API key for a bearer token to verify; nor does the exchange, which
    // handed it to the introspection provider (the probe saw bk_… tokens arrive there).
    if (token.startsWith(API_KEY_PREFIX)) throw refuse('invalid_grant', `${which}: API keys cannot be exchanged: send an access token.`)
    // It is verified as `Authorization: Bearer <token>` would be, whose refusal of white space names that header.
    if (/\s/.test(token)) throw refuse('invalid_grant', `${which} holds white space: a token is one word (RFC 6750 §2.1).`)
    let identity: Identity
    try {
      identity = await options.verify(token, clientIp)
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

  /**
   * The token answer and whom it was for. `tried` hears of the user and the agent as soon as both
   * tokens verified, so that a refusal after that names them in the audit record.
   */
  async function issue(params: Map<string, string>, clientIp: string, tried: (caller: Caller) => void): Promise<{ answer: Record<string, unknown>; caller: Caller }> {
    const grant = params.get('grant_type')
    if (grant === undefined) throw refuse('invalid_request', 'grant_type is missing.')
    if (grant !== TOKEN_EXCHANGE_GRANT) throw refuse('unsupported_grant_type', `Only ${TOKEN_EXCHANGE_GRANT} is supported here.`)
    const subjectToken = tokenParameter(params, 'subject_token')
    if (subjectToken === undefined) throw refuse('invalid_request', 'subject_token is missing: the token of the user the agent acts for.')
    const actorToken = tokenParameter(params, 'actor_token')
    if (actorToken === undefined && exchange.require_actor) {
      throw refuse('invalid_request', 'actor_token is missing: the agent\'s own token is required (token_exchange.require_actor).')
    }
    // RFC 8693 §2.2.1: issued_token_type says what was issued. The token is an access token and a
    // JWT, so either identifier is true of it, and the answer names the one asked for: a client
    // that asked for a JWT was told it got an access token (found by a probe), another type than
    // its request's. Any other type is one the gateway cannot issue.
    const requestedType = params.get('requested_token_type') ?? ACCESS_TOKEN_TYPE
    if (!JWT_ACCESS_TOKEN_TYPES.has(requestedType)) {
      throw refuse('invalid_request', `requested_token_type "${truncateClientValue(requestedType, 80)}" is not one the gateway issues: ${ACCESS_TOKEN_TYPE} or ${JWT_TOKEN_TYPE} (a JWT access token either way).`)
    }
    const audience = audienceOf(params)
    const requestedSeconds = expiresIn(params)
    const scope = params.get('scope')
    const requested = scope === undefined ? null : scope.split(' ').filter((s) => s !== '')
    if (requested !== null && requested.length === 0) throw refuse('invalid_scope', 'scope is empty: name the roles the token should carry, or leave it out for all the exchange allows.')

    const subject = await verified('subject_token', subjectToken, clientIp)
    const actor = actorToken === undefined ? null : await verified('actor_token', actorToken, clientIp)
    tried(callerOf(subject, actor, null))
    if (actor) checkMayAct(subject, actor)
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
    const lifetime = Math.min(
      Math.floor(exchange.lifetime / 1000), requestedSeconds ?? Infinity,
      secondsLeft('subject_token', subject, issuedAt), actor ? secondsLeft('actor_token', actor, issuedAt) : Infinity,
      untilRevocationSeen(subject, actor),
    )
    // The user's own claims, each once: those the token states itself (roles, scope, scp, azp…) as
    // they were under idp_claims, the others beside its own. The verifier puts them back together
    // for statement conditions (own-tokens.ts): the probe found the user's provider `roles` and
    // `scp` dropped, so a deny on them that refused the user let their agent through.
    const { carried, restated } = splitUserClaims(subject.claims)
    const claims: Record<string, unknown> = {
      ...carried,
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
      ...(actor ? { act: actClaim(actor, actorRoles) } : {}),
      [IDP_CLAIMS]: restated,
    }
    // idp_claims nests the user's claims one level deeper than their token did: a token nested past
    // what the verifier reads would be one the gateway signs and then refuses.
    if (nestsTooDeep(JSON.stringify(claims))) {
      throw refuse('invalid_grant', `${carriedFrom(actor)} nest too deep to be carried in the exchanged token (at most ${MAX_JSON_DEPTH} levels in all).`)
    }
    const keys = options.keys()
    if (!keys) throw new GatewayError('internal_error', { detail: 'The token exchange has no signing key.' })
    const token = keys.sign(claims)
    if (token.length > options.maxTokenBytes) {
      throw refuse('invalid_grant', `${carriedFrom(actor)} make the exchanged token ${token.length} bytes long, more than server.max_token_bytes (${options.maxTokenBytes}) accepts.`)
    }
    // The audit record of the exchange names whom the token is for and who acts, with what was granted.
    const caller = callerOf(subject, actor, { roles: granted, actorRoles, act: claims.act as Record<string, unknown> | undefined })
    return { answer: { access_token: token, issued_token_type: requestedType, token_type: 'Bearer', expires_in: lifetime, scope: claims.scope }, caller }
  }

  /**
   * Seconds until the user's or the agent's own token expires: a delegation outlives neither (the
   * probe found one lasting the whole lifetime for an agent whose token had seconds left). An
   * introspected token may have no exp (expiresAt 0): the provider vouched for it, and lifetime
   * bounds the new one. One within its issuer's clock tolerance past exp has nothing left to give.
   */
  function secondsLeft(which: 'subject_token' | 'actor_token', identity: Identity, issuedAt: number): number {
    if (identity.expiresAt <= 0) return Infinity
    const left = identity.expiresAt - issuedAt
    if (left <= 0) throw refuse('invalid_grant', `${which}: the token has expired.`)
    return left
  }

  /**
   * Seconds until a revocation of an introspected token (the user's or the agent's) is seen: the
   * gateway asks its provider again after introspection.cache, but the token it signs here cannot
   * be revoked, so it lives no longer than that. The probe found one exchange turning a token
   * revocable within a second into one good for the whole lifetime.
   */
  function untilRevocationSeen(subject: Identity, actor: Identity | null): number {
    let seconds = Infinity
    for (const [which, identity] of [['subject_token', subject], ['actor_token', actor]] as const) {
      if (identity?.introspectionCache === undefined) continue
      const cache = Math.floor(identity.introspectionCache / 1000)
      if (cache <= 0) {
        throw refuse('invalid_grant', `${which}: issuer "${identity.issuerName}" is asked about this token at every use (introspection.cache under 1s), and a token exchanged for it could not be revoked.`)
      }
      seconds = Math.min(seconds, cache)
    }
    return seconds
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
    authenticatesCallers: true,
    async serve(ctx, pipelineExchange) {
      if (ctx.method !== 'POST') throw new GatewayError('method_not_allowed', { detail: 'The token endpoint answers POST (RFC 6749 §3.2).', headers: { allow: 'POST' } })
      const { params, bytes } = await readForm(ctx as RequestContext)
      const served = nothingServed()
      served.bytesIn = bytes
      let issued
      try {
        issued = await issue(params, ctx.clientIp, (tried) => { served.caller = tried })
      } catch (err) {
        // Refused once both tokens verified: served with the error, so the audit record names the
        // user and the agent that tried (the probe found such refusals audited as nobody's).
        if (!(err instanceof GatewayError) || served.caller === undefined) throw err
        served.error = err
        return served
      }
      const answer = JSON.stringify(issued.answer)
      served.status = 200
      served.caller = issued.caller
      served.bytesOut = Buffer.byteLength(answer)
      if (pipelineExchange.beforeEnd) await pipelineExchange.beforeEnd(served)
      // RFC 6749 §5.1: a token response is never cached.
      ctx.res.writeHead(200, { 'content-type': 'application/json', 'content-length': served.bytesOut, 'cache-control': 'no-store', pragma: 'no-cache', 'x-request-id': ctx.id })
      ctx.res.end(answer)
      return served
    },
  }
}

type Caller = NonNullable<Served['caller']>

/**
 * The agent in the token (RFC 8693 §4.1): who it is and the roles it holds, and its own token's
 * claims, each once as the user's are (splitUserClaims), for the statements of its roles. With only
 * {sub, iss, client_id, roles}, a deny of the agent's roles on its own claims (a tier, a scope) that
 * refused it calling for itself let it through calling for a user (found by the access probe).
 */
/** Whose claims the exchanged token carries, for a refusal of its depth or length: the agent's are in act. */
function carriedFrom(actor: Identity | null): string {
  return actor ? 'subject_token and actor_token: their claims' : 'subject_token: its claims'
}

function actClaim(actor: Identity, roles: readonly string[]): Record<string, unknown> {
  const { carried, restated } = splitUserClaims(actor.claims)
  return { ...carried, sub: actor.sub, iss: actor.iss, ...(actor.clientId ? { client_id: actor.clientId } : {}), roles, [IDP_CLAIMS]: restated }
}

/**
 * The caller of an exchange as its audit record names it: the user and the agent, with what was
 * granted (the roles, the agent's roles and its `act` claim in the token); `grant` null for a
 * refusal, which grants nothing.
 */
function callerOf(subject: Identity, actor: Identity | null, grant: { roles: readonly string[]; actorRoles: readonly string[]; act: Record<string, unknown> | undefined } | null): Caller {
  const act = grant?.act ?? actor?.claims
  return {
    identity: Object.freeze({
      ...subject,
      ...(grant ? { grantedRoles: grant.roles } : {}),
      actor: actor && act ? { issuerName: actor.issuerName, iss: actor.iss, sub: actor.sub, clientId: actor.clientId, roles: grant?.actorRoles ?? null, claims: act } : null,
    }),
    credential: 'bearer',
    roles: grant?.roles ?? [],
  }
}

/**
 * RFC 8693 §4.4: a user's token that names the party that may act for its user (`may_act`, its
 * `sub` and `iss`, the token's own issuer when none is stated) lets no other agent act for them.
 * The probe found it read as one more claim: any agent the actors config allowed was granted a token.
 */
function checkMayAct(subject: Identity, actor: Identity): void {
  const mayAct = subject.claims.may_act
  if (mayAct === undefined) return
  const named = mayAct !== null && typeof mayAct === 'object' ? (mayAct as Record<string, unknown>) : {}
  if (typeof named.sub !== 'string') throw refuse('invalid_grant', 'subject_token: its may_act claim (RFC 8693 §4.4) names no party by sub, so no agent may act for its user.')
  const iss = typeof named.iss === 'string' ? named.iss : subject.iss
  if (named.sub !== actor.sub || iss !== actor.iss) {
    throw refuse('invalid_grant', `subject_token: its may_act claim (RFC 8693 §4.4) lets ${truncateClientValue(named.sub, 128)} of ${truncateClientValue(iss, 128)} act for its user, not ${actor.sub} of ${actor.iss}.`)
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
  if (!JWT_ACCESS_TOKEN_TYPES.has(type)) throw refuse('invalid_request', `${name}_type "${truncateClientValue(type, 80)}" is not supported: the gateway exchanges access tokens (${ACCESS_TOKEN_TYPE}).`)
  return token
}

/** `expires_in`: the lifetime the client asks for, in seconds (it only ever shortens the token's life). */
function expiresIn(params: Map<string, string>): number | null {
  const text = params.get('expires_in')
  if (text === undefined) return null
  if (!/^[1-9]\d{0,8}$/.test(text)) throw refuse('invalid_request', 'expires_in is a positive number of seconds.')
  return Number(text)
}

function listed(roles: readonly string[]): string {
  return roles.length === 0 ? 'none' : roles.join(', ')
}
