// Explains one request's decision, offline: the route, the identity, every role and the trust rule
// that granted it (or why not), every statement of the roles held that names the route and
// whether it matched, and the verdict. It runs the gateway's own functions (target parsing, the
// router, ruleMismatch, statementMismatch, decide, accessDenied, the claim checks, the API key
// verifier), so it cannot disagree with them.
import type { Socket } from 'node:net'
import type { JWTPayload } from 'jose'
import { ownIssuerConfig } from '../agents/index.ts'
import { API_KEYS_ISSUER, caOwners, distinguishedName, EXCHANGE_ISSUER, jwtIssuers, type AcceptedCredential, type Config, type IssuerConfig } from '../config/index.ts'
import { GatewayError, type ErrorCode } from '../errors/index.ts'
import { describeClaimMismatch, withheldHeld, ruleMismatch, statementMismatch, type CompiledStatement, type Mismatch, type RoutePolicy } from '../access/index.ts'
import { formBodyOf, formMethodOverrides, isApiKeyBearer, jsonMethodOverrides, methodOverrides, parseTarget, type RequestTarget } from '../http/index.ts'
import {
  actorNameProblem, apiKeyVerifier, boundCertificate, checkClaims, checkWithoutKey, decodeCompactJwt, delegatedIdentity, exchangedIdentity, findDrift, hasAccessTokenParameter, identityFromClaims, issuerUnknown, keyFreeRule, NAMES_NO_ACTOR, untrustedProviderRefusal, valueNestsTooDeep,
  type ApiKeyDirectory, type DecodedJwt, type Introspector, type X509Issuer,
} from '../identity/index.ts'
import type { Identity } from '../request/index.ts'
import { printable } from '../text/index.ts'
import type { CompiledRoute, Runtime } from './compile.ts'
import { checkOverrideRoutes, evaluateWithOverrides, overriddenAccessDenied, type OverrideSource } from './method-override.ts'
import type { ExplainRequest, Explanation } from './explanation-shapes.ts'

export type { ExplainRequest, Explanation, Verdict } from './explanation-shapes.ts'

/**
 * What was asked of a token that is looked up, not read (explainWithKeys): the key store of an API
 * key, the introspecting issuer of an opaque token. Its identity, or the gateway's refusal.
 */
export type LookedUpToken = { identity: Identity } | { refusal: GatewayError }

/**
 * explain, with an API key given as the token (`bk_…`) checked as the gateway checks it: by its
 * own api_key verifier (the key's form, its record in `directory`, revocation, expiry), the key's
 * principal then decided as any caller. The probe found such a key explained as a malformed JWT.
 * Asynchronous, as the store may be read; the use is not recorded (explaining is not using).
 * `directory`: the running gateway's, or one the CLI opens (an offline runtime's reads nothing).
 */
export async function explainWithKeys(rt: Runtime, given: ExplainRequest, directory: ApiKeyDirectory | null = rt.apiKeys, introspector: Introspector | null = null): Promise<Explanation> {
  // A header's value loses the white space around it on the wire (RFC 9110 §5.5), so the gateway
  // reads a token pasted with a space or a newline as the token; explain called it malformed (a probe).
  const request = given.token !== undefined && given.token !== given.token.trim() ? { ...given, token: given.token.trim() } : given
  if (request.token !== undefined && goesToIntrospection(rt, request.token)) return explain(rt, request, await introspected(rt, introspector, request.token))
  const settings = rt.config.api_keys
  if (request.token === undefined || !isApiKey(request.token) || !settings || !directory) return explain(rt, request)
  const verifier = apiKeyVerifier({ ...directory, used() {} }, settings.header, () => request.now ?? Date.now())
  // The key as its configured header carries it; the api_key verifier reads no connection.
  const input = { headers: null, rawHeaders: [settings.header, request.token], query: '', socket: null as unknown as Socket }
  let checked: LookedUpToken
  try {
    checked = { identity: (await verifier.authenticate(input)).identity }
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err
    checked = { refusal: err }
  }
  return explain(rt, request, checked)
}

/**
 * A token the gateway sends to the introspecting issuer (verify.ts): no API key, within
 * server.max_token_bytes, and no JWT. explain called it "malformed_token: not a well-formed JWT", a
 * refusal the gateway never gives it (found by the access probe).
 */
function goesToIntrospection(rt: Runtime, token: string): boolean {
  return rt.introspection !== null && !isApiKey(token) && token.length <= rt.config.server.max_token_bytes && decodeCompactJwt(token) === undefined
}

/**
 * An opaque token as the gateway reads it: its issuer's introspection answer, with the agent its
 * `act` names (verify.ts). `introspector`: the running gateway's, for an admin's POST /api/explain;
 * without it (bouncer explain offline, a read-only credential: the answer says whether a token is
 * live, and whose) the provider is not asked, and the explanation says so.
 */
async function introspected(rt: Runtime, introspector: Introspector | null, token: string): Promise<LookedUpToken> {
  const issuer = (rt.introspection as Introspector).issuer
  if (introspector === null) {
    return { refusal: new GatewayError('identity_provider_unavailable', { detail: `The token is not a JWT: the gateway asks issuer "${issuer.name}" about it at its introspection endpoint, which this explanation did not ask (bouncer explain asks no provider; POST /api/explain asks for an admin credential only). Explain the claims its answer states instead.` }) }
  }
  try {
    const identity = await introspector.introspect(token)
    const acting = delegatedIdentity(identity, identity.claims, (iss) => trustedIssuers(rt.config).find((i) => i.issuer === iss)?.name)
    return acting === null ? { refusal: new GatewayError('malformed_token', { detail: NAMES_NO_ACTOR }) } : { identity: acting }
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err
    return { refusal: err }
  }
}

/** The methods an urlencoded form body's `_method` fields name, as the gateway reads a form POST's, but those the query named already. */
function explainedFormOverrides(method: string, form: string, named: readonly string[]): readonly string[] {
  const body = Buffer.from(form, 'latin1')
  const kind = formBodyOf(method, { contentType: 'application/x-www-form-urlencoded', contentLength: body.length, chunked: false })
  return kind === null ? [] : formMethodOverrides(method, kind, body).filter((override) => !named.includes(override))
}

/** The method a JSON body's top-level `_method` names, as the gateway reads a JSON POST's, but those named already. */
function explainedJsonOverrides(method: string, json: string, named: readonly string[]): readonly string[] {
  if (method !== 'POST') return []
  return jsonMethodOverrides(method, Buffer.from(json, 'utf8')).filter((override) => !named.includes(override))
}

/** The methods a body named, and where (the 403's words say which). */
interface BodyOverrides {
  overrides: readonly string[]
  source: OverrideSource
}

/** An absolute-form request target's authority. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)/i

/** A token of the form the gateway takes for an API key (`Authorization: Bearer bk_…`). */
function isApiKey(token: string): boolean {
  return isApiKeyBearer(`Bearer ${token}`)
}

/** `apiKey`: what explainWithKeys found of an API key given as the token. */
export function explain(rt: Runtime, request: ExplainRequest, apiKey?: LookedUpToken): Explanation {
  return explainInto(rt, request, apiKey, new Set())
}

/**
 * explain, and the roles the identity's own credential grants — by its trust rules, or the
 * exchange's for a token the gateway issued: those it holds without ExplainRequest.roles. With
 * roles given, a recorded request's trace compares the two from one explanation, not two.
 */
export function explainGranted(rt: Runtime, request: ExplainRequest): { explanation: Explanation; granted: ReadonlySet<string> } {
  const granted = new Set<string>()
  return { explanation: explainInto(rt, request, undefined, granted), granted }
}

/** `granted`: filled with the roles the credential grants, as explainGranted says. */
function explainInto(rt: Runtime, request: ExplainRequest, apiKey: LookedUpToken | undefined, granted: Set<string>): Explanation {
  const method = request.method.toUpperCase()
  const ip = request.ip ?? '127.0.0.1'
  const out: Explanation = {
    request: { method, path: request.path, ip },
    route: null,
    identity: null,
    roles: [],
    statements: [],
    decision: { effect: 'deny', status: 0, code: null, statement: null, reason: '' },
  }
  let route: CompiledRoute
  let query: string
  let overrides: readonly string[]
  let target: RequestTarget
  let bodyOverrides: BodyOverrides[]
  try {
    // The gateway refuses a tunnel before any route is looked at (pipeline.ts): explain said 405, or allow where a route lists CONNECT.
    if (method === 'CONNECT') throw new GatewayError('bad_path', { detail: 'CONNECT tunnels are not supported.' })
    // A whole URL (pasted from a browser or a log) is a request in absolute form, whose Host a client
    // sends as the URL's authority (RFC 9112 §3.2.2): explained as the gateway answers that request,
    // not refused as "for another host" (no Host is given offline; an adversarial probe).
    target = parseTarget(request.path, ABSOLUTE_FORM.exec(request.path)?.[1])
    route = rt.router.match(method, target).route
    query = target.query
    overrides = methodOverrides(method, query)
    if (overrides.length > 0) checkOverrideRoutes(rt.router, route, target, overrides)
    // A body's `_method` is routed and judged after the POST itself was authorized (pipeline.ts judgeBody): a form's first, then JSON's.
    const form = request.form === undefined ? [] : explainedFormOverrides(method, request.form, overrides)
    const json = request.json === undefined ? [] : explainedJsonOverrides(method, request.json, [...overrides, ...form])
    bodyOverrides = [{ overrides: form, source: 'form' as const }, { overrides: json, source: 'json' as const }].filter((named) => named.overrides.length > 0)
  } catch (err) {
    return refuse(out, err as GatewayError)
  }
  out.route = {
    id: route.id,
    path: route.pattern.text,
    methods: [...route.methods],
    upstream: route.backend.upstream ?? '(built in)',
    public: route.public,
    limits: [...(route.limits?.names ?? [])],
  }
  if (route.public) {
    try {
      for (const named of bodyOverrides) checkOverrideRoutes(rt.router, route, target, named.overrides, named.source)
    } catch (err) {
      return refuse(out, err as GatewayError)
    }
    out.decision = { effect: 'allow', status: 200, code: null, statement: null, reason: `Route "${route.id}" is public: no identity is needed, no policy applies.` }
    return out
  }

  const issuers = trustedIssuers(rt.config)
  const credential = request.token === undefined && request.claims === undefined ? null : credentialOf(rt.config, issuers, request, route.accept)
  // An access_token in the query makes a bearer token present, which the gateway refuses 400 (verify.ts)
  // before any credential after it in accept is read: explain allowed such a request (an adversarial probe).
  if (query !== '' && hasAccessTokenParameter(query) && route.accept.find((kind) => kind === 'bearer' || kind === credential?.kind) === 'bearer') {
    return refuse(out, new GatewayError('bad_request', { detail: 'Access tokens in the query string are not accepted: send them in the Authorization header.' }))
  }
  if (credential === null) {
    const missing = missingCredential(route.accept[0] ?? 'bearer', rt.config)
    return refuse(out, new GatewayError(missing.code, { detail: `No claims or token were given: ${missing.detail}` }))
  }
  const { identity: found, problems, described } = credential.kind === 'client_cert'
    ? certificateIdentity(rt.certificateIssuers, request.claims ?? {})
    : identityOf(issuers, request, credential, apiKey, rt.config.server.max_token_bytes)
  out.identity = described
  if (credential.refusal) problems.unshift(credential.refusal)
  const certificate = found && described && credential.kind === 'bearer' && !request.verified ? certificateNeeded(found, problems) : null
  if (certificate !== null && described) described.certificate_bound = certificate
  if (!found) {
    const problem = problems[0] as { code: ErrorCode; detail: string }
    return refuse(out, new GatewayError(problem.code, { detail: problem.detail }))
  }

  // Roles given are held as an exchange's are (access/roles.ts): instead of those of trust rules.
  const identity: Identity = request.roles === undefined ? found : { ...found, grantedRoles: request.roles }
  let judged = evaluateWithOverrides(rt.access, identity, route, method, overrides, ip)
  let source: OverrideSource = 'query'
  for (const named of bodyOverrides) {
    if (judged.result.decision.effect !== 'allow' || problems.length > 0) break
    try {
      checkOverrideRoutes(rt.router, route, target, named.overrides, named.source)
    } catch (err) {
      return refuse(out, err as GatewayError)
    }
    judged = evaluateWithOverrides(rt.access, identity, route, method, named.overrides, ip)
    source = named.source
  }
  const result = judged.result
  out.roles = describeRoles(rt, request, found, identity, result.roles, granted)
  const actor = identity.actor
  if (actor && described) described.actor = describeActor(actor, result.actorRoles ?? [])
  out.statements = describeStatements(result.roles, route.policy, judged.method, ip, identity.claims)
  // On behalf of a user the agent's roles decide too (access/evaluate.ts): their statements, read on
  // the agent's claims, as explain --tool lists them; the one that denied was missing from the list.
  if (actor) out.statements.push(...describeStatements(result.actorRoles ?? [], route.policy, judged.method, ip, actor.claims).map((s) => ({ ...s, agent: true as const })))

  const { decision } = result
  if (problems.length > 0) {
    const first = problems[0] as { code: ErrorCode; detail: string }
    refuse(out, new GatewayError(first.code, { detail: first.detail }))
    const verdict = decision.effect === 'allow' ? 'allow' : 'deny'
    const given = credential.refusal ? `Were ${CREDENTIAL_NAMES[credential.kind]} accepted here` : 'With a valid token'
    out.decision.reason += ` ${given}, the policies would ${verdict} it${decision.statement ? ` (statement "${decision.statement.sid}")` : ''}.`
    return out
  }
  if (decision.effect === 'allow') {
    out.decision = {
      effect: 'allow',
      status: 200,
      code: null,
      statement: decision.statement.sid,
      reason: `Allowed by statement "${decision.statement.sid}" of policy "${decision.statement.policy}"; no deny statement matched.${certificate === null ? '' : ` ${needsCertificate(certificate)}`}`,
    }
    return out
  }
  refuse(out, overriddenAccessDenied(judged, identity, route.id, method, source))
  out.decision.statement = decision.statement?.sid ?? null
  if (decision.reason === 'explicit_deny') out.decision.reason += ' An explicit deny wins over any allow.'
  const decidingSide = out.statements.filter((s) => (s.agent === true) === (result.deniedBy === 'actor'))
  if (decision.reason === 'implicit_deny' && decidingSide.length === 0) out.decision.reason += ' No statement of these roles names this route.'
  return out
}

/**
 * The client certificate a certificate-bound token (cnf.x5t#S256) counts with, as the gateway's
 * verifier reads its cnf (verify.ts boundCertificate); a binding it refuses whatever the connection
 * is a problem. Explain sees no connection: it named such a token allowed, where the gateway
 * answers 401 client_cert_required to every request not presenting that certificate.
 */
function certificateNeeded(identity: Identity, problems: Problems): string | null {
  if (identity.claims.cnf === undefined) return null
  try {
    return boundCertificate(identity.claims.cnf)
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err
    problems.push({ code: err.code, detail: err.detail })
    return null
  }
}

function needsCertificate(thumbprint: string): string {
  return `Only over a connection presenting the client certificate whose SHA-256 is ${thumbprint} (cnf.x5t#S256, RFC 8705), which explain does not see: any other request carrying this token gets 401 client_cert_required.`
}

/**
 * Every role of the config, held or not, with the trust rule that granted it or why each did not
 * (or the exchange's grant, or the roles given). `held`: the roles the gateway holds for `identity`.
 * `granted` is filled with those the credential itself grants (explainGranted).
 */
export function describeRoles(rt: Runtime, request: Pick<ExplainRequest, 'roles'>, found: Identity, identity: Identity, held: readonly string[], granted: Set<string>): Explanation['roles'] {
  const out: Explanation['roles'] = []
  // What the exchange granted that the running config still gives (access/roles.ts).
  const stillGranted = found.grantedRoles !== undefined ? rt.access.resolver.rolesFor(found) : []
  for (const role of rt.access.roles) {
    const isHeld = held.includes(role.name)
    const given = request.roles === undefined ? null : { rule: ROLES_GIVEN, matched: isHeld, why: isHeld ? null : 'the gateway did not assume it for this request' }
    // A token the gateway issued holds the roles its exchange granted, not those of trust rules
    // (access/roles.ts): the probe found explain listing roles such a token does not hold.
    if (found.grantedRoles !== undefined) {
      if (stillGranted.includes(role.name)) granted.add(role.name)
      const why = isHeld ? null : stillGranted.includes(role.name) || !found.grantedRoles.includes(role.name) ? 'the exchange did not grant it' : 'granted by the exchange, but no longer given by the config (the user\'s trust rules, or the agent\'s roles and token_exchange.actors)'
      out.push({ role: role.name, held: isHeld, rules: [given ?? { rule: EXCHANGE_GRANT, matched: isHeld, why }] })
      continue
    }
    const rules = role.rules.map((rule) => {
      const why = ruleMismatch(rule, identity)
      return { rule: describeRule(rule.index, rule.issuer, rule.subject?.text ?? null, rule.claims), matched: why === null, why }
    })
    const byRules = rules.some((r) => r.matched)
    if (byRules) granted.add(role.name)
    if (given && isHeld !== byRules) rules.unshift(given)
    out.push({ role: role.name, held: isHeld, rules })
  }
  return out
}

/** The agent acting for the subject (an `act` claim), with the roles its side of the decision holds. */
export function describeActor(actor: NonNullable<Identity['actor']>, roles: readonly string[]): NonNullable<NonNullable<Explanation['identity']>['actor']> {
  return { sub: actor.sub, iss: actor.iss, issuer: actor.issuerName, roles: [...roles], roles_from: actor.roles !== null ? 'token_exchange' : 'trust_rules' }
}

/** Every statement of the roles held that names the route (its policy), in file order, with whether it matches and why not. */
export function describeStatements(roles: readonly string[], policy: RoutePolicy | undefined, method: string, ip: string, claims: Readonly<Record<string, unknown>>): Explanation['statements'] {
  const seen = new Map<CompiledStatement, Explanation['statements'][number]>()
  for (const role of roles) {
    const bucket = policy?.get(role)
    for (const statement of [...(bucket?.deny ?? []), ...(bucket?.allow ?? [])]) {
      const known = seen.get(statement)
      if (known) {
        known.roles.push(role)
        continue
      }
      const why = describeMismatch(statementMismatch(statement, method, ip, claims), statement, method, ip, claims)
      // A deny that holds on a claim the token withholds says so in its free text (it matched, unexplained).
      const withheld = why === null && statement.effect === 'deny' ? withheldHeld(statement.claims, claims) : []
      const note = withheld.length === 0 ? null : `claim ${withheld.join(', ')} ${withheld.length === 1 ? 'is' : 'are'} withheld by the token (_claim_names points to another source): a deny's condition on ${withheld.length === 1 ? 'it holds' : 'them hold'}, failing closed`
      seen.set(statement, { sid: statement.sid, policy: statement.policy, effect: statement.effect, roles: [role], matched: why === null, why: why ?? note })
    }
  }
  return [...seen.entries()].sort(([a], [b]) => a.order - b.order).map(([, entry]) => entry)
}

export function refuse(out: Explanation, error: GatewayError): Explanation {
  out.decision = { effect: 'deny', status: error.status, code: error.code, statement: null, reason: `${error.status} ${error.code}: ${error.detail}` }
  return out
}

/** The issuers whose tokens the gateway takes: the configured ones, and its own when it exchanges tokens. */
export function trustedIssuers(config: Config): IssuerConfig[] {
  const exchange = config.token_exchange
  return exchange?.enabled ? [...jwtIssuers(config), ownIssuerConfig(exchange, config.mcp?.resource)] : jwtIssuers(config)
}

/** How explain names the roles a token the gateway issued holds (its exchange granted them). */
const EXCHANGE_GRANT = 'token exchange'

/** How explain names the roles given (ExplainRequest.roles): those the gateway assumed for a recorded request. */
const ROLES_GIVEN = 'the recorded request (the gateway assumed it)'

/** How the gateway names each kind of credential in a refusal (identity/authenticate.ts). */
export const CREDENTIAL_NAMES: Record<AcceptedCredential, string> = {
  bearer: 'a bearer token',
  session: 'a session cookie',
  api_key: 'an API key',
  client_cert: 'a client certificate',
}

/** The kind of credential the token or claims stand for, and the gateway's refusal when the route does not accept it. */
export interface Credential {
  kind: AcceptedCredential
  refusal: { code: ErrorCode; detail: string } | null
}

/**
 * The gateway tells credentials apart by their form before it reads one (identity/authenticate.ts):
 * a kind the route's `accept` does not list is refused as missing whatever it holds. The probe found
 * explain allowing an API key's principal on a bearer-only route. A token is a bearer token, or an
 * API key when it is `bk_…`; claims are an API key's when their iss is `api-keys`, else a bearer
 * token's, or a session's when their issuer is sign_in's and the route takes sessions but not bearer
 * tokens. A client certificate's identity (its iss a CA's DN) is one when the request says so.
 */
export function credentialOf(config: Config, issuers: readonly IssuerConfig[], request: ExplainRequest, accept: readonly AcceptedCredential[]): Credential {
  const kinds = possibleKinds(config, issuers, request)
  const kind = kinds.find((k) => accept.includes(k))
  if (kind) return { kind, refusal: null }
  const carried = kinds[0] as AcceptedCredential
  const missing = missingCredential(accept[0] ?? 'bearer', config)
  return { kind: carried, refusal: { code: missing.code, detail: `${missing.detail} The request carries ${CREDENTIAL_NAMES[carried]}, which this route does not accept (accept: ${accept.join(', ')}).` } }
}

/** The kinds the token or claims could arrive as, the first preferred. */
function possibleKinds(config: Config, issuers: readonly IssuerConfig[], request: ExplainRequest): AcceptedCredential[] {
  if (request.credential === 'client_cert') return ['client_cert']
  if (request.token !== undefined) return [isApiKey(request.token) ? 'api_key' : 'bearer']
  const claims = request.claims ?? {}
  if (claims.iss === API_KEYS_ISSUER && config.api_keys) return ['api_key']
  // A session's identity is its sign-in provider's claims (identity/sessions/): that issuer's iss, as its tokens'.
  const iss = claims.iss === undefined && issuers.length === 1 ? (issuers[0] as IssuerConfig).issuer : claims.iss
  const signIn = config.sign_in && issuers.find((i) => i.name === config.sign_in?.issuer)
  return signIn && iss === signIn.issuer ? ['bearer', 'session'] : ['bearer']
}

/** What the gateway answers a request carrying nothing the route takes: its first kind's own refusal (each verifier's). */
export function missingCredential(kind: AcceptedCredential, config: Config): { code: ErrorCode; detail: string } {
  switch (kind) {
    case 'bearer': return { code: 'missing_token', detail: 'This route needs a bearer token (Authorization: Bearer …).' }
    case 'api_key': {
      const header = config.api_keys?.header ?? 'X-API-Key'
      return { code: 'missing_token', detail: `This route needs an API key (${header}: bk_…, or Authorization: Bearer bk_…).` }
    }
    case 'session': return { code: 'session_required', detail: 'This route needs a signed-in session: sign in with a browser.' }
    case 'client_cert': return { code: 'client_cert_required', detail: 'This route needs a client certificate (TLS client authentication).' }
  }
}

export type Problems = Array<{ code: ErrorCode; detail: string }>

export function identityOf(issuers: readonly IssuerConfig[], request: ExplainRequest, credential: Credential, apiKey: LookedUpToken | undefined, maxTokenBytes: number): {
  identity: Identity | null
  problems: Problems
  described: Explanation['identity']
} {
  const problems: Problems = []
  if (request.token !== undefined && credential.kind === 'api_key') return apiKeyTokenIdentity(apiKey, problems)
  // A bearer token looked up already is an opaque one, introspected (explainWithKeys).
  if (request.token !== undefined && apiKey !== undefined) return lookedUpTokenIdentity(apiKey, issuers, problems)
  const source: 'token' | 'claims' = request.token !== undefined ? 'token' : 'claims'
  const configured = issuers.map((i) => i.issuer)
  let claims: JWTPayload
  if (request.token !== undefined) {
    // The gateway's own checks that need no key, first (verify.ts): only the signature is left
    // unchecked. A token they refuse is still read, when it can be, to say whose it is.
    let decoded: DecodedJwt | undefined
    try {
      decoded = checkWithoutKey(request.token, {
        maxTokenBytes,
        ruleFor: (iss) => {
          const config = issuers.find((i) => i.issuer === iss)
          return config && keyFreeRule(config)
        },
        unknownIssuer: (iss) => issuerUnknown(iss, findDrift(iss, configured)),
      })?.decoded
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err
      problems.push({ code: err.code, detail: err.detail })
      decoded = decodeCompactJwt(request.token)
    }
    if (!decoded) return { identity: null, problems, described: { source, signature_checked: false, issuer: null, iss: null, sub: null, client_id: null, problems } }
    claims = decoded.claims
  } else {
    claims = request.claims as JWTPayload
    // What checkWithoutKey refuses in a token's claims, before any issuer is chosen.
    const refused = writtenClaimsProblem(claims)
    if (refused) {
      problems.push(refused)
      return { identity: null, problems, described: { source, signature_checked: false, issuer: null, iss: null, sub: null, client_id: null, problems } }
    }
  }
  let iss = typeof claims.iss === 'string' ? claims.iss : null
  if (iss === API_KEYS_ISSUER && credential.kind === 'api_key') return apiKeyIdentity(claims, source, problems)
  // A lone issuer is implied for claims written by hand; a token without iss is refused (above).
  if (iss === null && source === 'claims' && issuers.length === 1) iss = (issuers[0] as IssuerConfig).issuer
  const issuer = issuers.find((i) => i.issuer === iss)
  const described: NonNullable<Explanation['identity']> = { source, signature_checked: false, issuer: issuer?.name ?? null, iss, sub: null, client_id: null, problems }
  if (!issuer) {
    // A token's missing or unknown iss is a problem already.
    if (source === 'claims') {
      const unknown = issuerUnknown(iss ?? 'null', iss === null ? undefined : findDrift(iss, configured))
      problems.push({ code: unknown.code, detail: iss === null ? 'The claims have no iss, and more than one issuer is configured: name one.' : unknown.detail })
    }
    return { identity: null, problems, described }
  }
  // The gateway's own claim checks: all of them for a token; for hand-written claims, those of
  // what they carry (verify.ts checkClaims). A session keeps none of a token's exp, nbf and iat,
  // and its aud is the sign-in's client: a token's checks are not a session's. An identity the
  // gateway verified passed them then (ExplainRequest.verified).
  if (credential.kind !== 'session' && !request.verified) {
    try {
      checkClaims(claims, issuer, request.now ?? Date.now(), source === 'claims')
    } catch (err) {
      if (err instanceof GatewayError) problems.push({ code: err.code, detail: err.detail })
      else throw err
    }
  }
  let identity: Identity
  try {
    identity = identityFromClaims(issuer, claims)
  } catch (err) {
    problems.push({ code: (err as GatewayError).code, detail: (err as GatewayError).detail })
    return { identity: null, problems, described }
  }
  // On behalf of (an `act` claim): decided for the user and the agent, as the verifier reads it.
  const issuerNameOf = (iss: string) => issuers.find((i) => i.issuer === iss)?.name
  const acting = issuer.name === EXCHANGE_ISSUER ? exchangedIdentity(identity, claims, issuerNameOf) : delegatedIdentity(identity, claims, issuerNameOf)
  if (acting === null) {
    problems.push({ code: 'malformed_token', detail: NAMES_NO_ACTOR })
    return { identity: null, problems, described }
  }
  identity = acting
  const actorName = actorNameProblem(identity)
  if (actorName !== null) {
    problems.push({ code: 'malformed_token', detail: actorName })
    return { identity: null, problems, described }
  }
  const untrusted = issuer.name === EXCHANGE_ISSUER ? untrustedProviderRefusal(identity, (iss) => issuerNameOf(iss) !== undefined) : null
  if (untrusted !== null) problems.push({ code: 'issuer_unknown', detail: untrusted })
  described.sub = identity.sub
  described.client_id = identity.clientId
  return { identity, problems, described }
}

/**
 * Hand-written claims that no token could carry past checkWithoutKey: nested deeper than the
 * gateway reads, or an iss that is there but no string (the lone issuer is implied only for an absent one).
 */
function writtenClaimsProblem(claims: JWTPayload): { code: ErrorCode; detail: string } | null {
  if (valueNestsTooDeep(claims)) return { code: 'malformed_token', detail: 'The claims nest deeper than the gateway reads a token\'s.' }
  if (claims.iss !== undefined && typeof claims.iss !== 'string') return { code: 'claim_missing', detail: 'The token has no iss claim, so no issuer can be chosen (iss is not a string).' }
  return null
}

/**
 * A client certificate's identity from its claims (identity/x509.ts): the x509 issuer is the owner
 * (caOwners, the verifier's own rule) of the first CA with the DN in iss; the other claims are kept,
 * for the trust rules and conditions that read them.
 */
function certificateIdentity(issuers: readonly X509Issuer[], claims: Record<string, unknown>): ReturnType<typeof identityOf> {
  const problems: Problems = []
  const iss = typeof claims.iss === 'string' ? claims.iss : null
  const sub = typeof claims.sub === 'string' ? claims.sub : null
  const issuer = iss === null ? undefined : [...caOwners(issuers).values()].find(({ ca }) => distinguishedName(ca.subject) === iss)?.issuer
  const described = { source: 'claims' as const, signature_checked: false as const, issuer: issuer?.name ?? null, iss, sub, client_id: null, problems }
  if (issuer === undefined || iss === null || sub === null) {
    problems.push({
      code: 'client_cert_required',
      detail: iss === null || sub === null
        ? 'A client certificate\'s claims name the subject DN of the CA it chains to in iss, and its URI SAN or CN in sub.'
        : `The client certificate chains to "${iss}", a CA that no x509 issuer's ca names.`,
    })
    return { identity: null, problems, described }
  }
  const identity: Identity = { issuerName: issuer.name, iss, sub, clientId: null, claims: { ...claims, iss, sub }, expiresAt: 0 }
  return { identity, problems, described }
}

/** An API key given as the token: the identity the key store gave it (explainWithKeys), or its refusal. */
function apiKeyTokenIdentity(checked: LookedUpToken | undefined, problems: Problems): ReturnType<typeof identityOf> {
  const described = { source: 'token' as const, signature_checked: false as const, issuer: API_KEYS_ISSUER, iss: API_KEYS_ISSUER, sub: null as string | null, client_id: null as string | null, problems }
  if (checked === undefined) {
    problems.push({ code: 'identity_provider_unavailable', detail: 'The API key was not looked up: no key store was read for this explanation.' })
    return { identity: null, problems, described }
  }
  if ('refusal' in checked) {
    problems.push({ code: checked.refusal.code, detail: checked.refusal.detail })
    return { identity: null, problems, described }
  }
  described.sub = checked.identity.sub
  described.client_id = checked.identity.clientId
  return { identity: checked.identity, problems, described }
}

/** An opaque token: the identity its issuer's introspection answer gave (explainWithKeys), or the refusal. */
function lookedUpTokenIdentity(checked: LookedUpToken, issuers: readonly IssuerConfig[], problems: Problems): ReturnType<typeof identityOf> {
  const identity = 'identity' in checked ? checked.identity : null
  const introspecting = issuers.find((i) => i.introspection !== undefined)
  const described = {
    source: 'token' as const, signature_checked: false as const, issuer: identity?.issuerName ?? introspecting?.name ?? null, iss: identity?.iss ?? introspecting?.issuer ?? null,
    sub: identity?.sub ?? null, client_id: identity?.clientId ?? null, problems,
  }
  if ('refusal' in checked) problems.push({ code: checked.refusal.code, detail: checked.refusal.detail })
  return { identity, problems, described }
}

/** `{"iss": "api-keys", "sub": PRINCIPAL}`: an API key's principal, as the gateway would see it. */
function apiKeyIdentity(claims: JWTPayload, source: 'token' | 'claims', problems: Problems): ReturnType<typeof identityOf> {
  const clientId = typeof claims.client_id === 'string' ? claims.client_id : null
  const described = { source, signature_checked: false as const, issuer: API_KEYS_ISSUER, iss: API_KEYS_ISSUER, sub: null as string | null, client_id: clientId, problems }
  if (typeof claims.sub !== 'string') {
    problems.push({ code: 'api_key_invalid', detail: 'An API key\'s claims name its principal in sub.' })
    return { identity: null, problems, described }
  }
  described.sub = claims.sub
  const identity: Identity = { issuerName: API_KEYS_ISSUER, iss: API_KEYS_ISSUER, sub: claims.sub, clientId, claims: { iss: API_KEYS_ISSUER, sub: claims.sub, client_id: clientId }, expiresAt: 0 }
  return { identity, problems, described }
}

function describeRule(index: number, issuer: string, subject: string | null, claims: ReadonlyArray<{ name: string; globs: ReadonlyArray<{ text: string }> }> | null): string {
  const parts = [`assumed_by[${index}]: issuer ${issuer}`]
  if (subject !== null) parts.push(`subject ${subject}`)
  for (const claim of claims ?? []) parts.push(`${claim.name}=${claim.globs.map((g) => g.text).join('|')}`)
  return parts.join(', ')
}

function describeMismatch(mismatch: Mismatch, statement: CompiledStatement, method: string, ip: string, claims: Readonly<Record<string, unknown>>): string | null {
  if (mismatch === null) return null
  if (mismatch === 'action') return `action ${method} is not in [${[...statement.actions].join(', ')}]`
  if (mismatch === 'source_ip') return `source IP ${ip} is not in [${statement.sourceIpText.join(', ')}]`
  return describeClaimMismatch(mismatch, claims)
}

/** The explanation for a person: one screen, the verdict last; claims and paths made printable line by line. */
export function formatExplanation(e: Explanation): string {
  const lines: string[] = []
  const row = (label: string, text: string) => lines.push(`${label.padEnd(11)}${text}`)
  row('Request', `${e.request.method} ${e.request.path} from ${e.request.ip}`)
  const tool = e.tool
  if (tool) {
    if (tool.route) row('Tool', `${tool.name}: route tool of ${tool.route.id}, sends ${tool.route.method} ${tool.route.path} → ${tool.route.upstream}`)
    else if (tool.server) row('Tool', `${tool.name}: tool ${tool.server.tool} of MCP server ${tool.server.name}`)
    else row('Tool', `${tool.name}: no such tool`)
    if (tool.approval) row('Approval', `mcp.approvals holds it (tools ${tool.approval.tools.join(', ')}): approvers ${tool.approval.approvers.join(', ')}, ttl ${ttlText(tool.approval.ttl_seconds)}`)
  } else if (e.route) row('Route', `${e.route.id}  (${e.route.methods.join(',')} ${e.route.path} → upstream ${e.route.upstream}${e.route.public ? ', public' : ''}${e.route.limits.length ? `, limits ${e.route.limits.join(', ')}` : ''})`)
  else row('Route', 'none')
  if (e.identity) {
    const who = [`issuer ${e.identity.issuer ?? `(unknown: ${e.identity.iss ?? 'no iss'})`}`, `subject ${e.identity.sub ?? '(none)'}`]
    if (e.identity.client_id) who.push(`client ${e.identity.client_id}`)
    const checked = e.identity.source === 'token' && e.identity.issuer === API_KEYS_ISSUER ? 'an API key, checked against the key store' : `${e.identity.source}; signature not checked offline`
    row('Identity', `${who.join(', ')}  (from ${checked})`)
    for (const problem of e.identity.problems) row('', `! ${problem.code}: ${problem.detail}`)
    if (e.identity.certificate_bound) row('', `bound to the client certificate whose SHA-256 is ${e.identity.certificate_bound} (cnf.x5t#S256): not seen here`)
    const actor = e.identity.actor
    if (actor) {
      const roles = actor.roles.length > 0 ? actor.roles.join(', ') : 'none'
      row('Agent', `${actor.sub} (issuer ${actor.issuer}) acting for the subject, with roles ${roles} (${actor.roles_from === 'token_exchange' ? 'held at the exchange, act.roles, as far as the config still gives them' : 'from trust rules'})`)
    }
  }
  if (e.roles.length > 0) {
    lines.push('Roles')
    for (const role of e.roles) {
      // Held is what counts (an exchanged token's roles are the exchange's): a rule matching does not make a role held.
      const granted = role.held ? role.rules.find((r) => r.matched) : undefined
      if (granted) row('', `+ ${role.role}: granted by ${granted.rule}`)
      else if (role.held) row('', `+ ${role.role}: held`)
      else row('', `- ${role.role}: not held (${role.rules.map((r) => `${r.rule.split(':')[0]}: ${r.why}`).join('; ')})`)
    }
  }
  if (e.route && !e.route.public && e.identity) {
    lines.push(tool ? `Statements (of the roles held, naming mcp:${tool.name}${tool.route ? ` or route ${tool.route.id}` : ''})` : 'Statements (of the roles held, naming this route)')
    if (e.statements.length === 0) row('', '(none)')
    for (const s of e.statements) {
      const on = s.route === undefined ? '' : ` on ${s.route}`
      row('', `${s.matched ? '+' : '-'} ${s.effect.padEnd(5)} ${s.sid}${on} (policy ${s.policy}, ${s.agent ? 'the agent\'s role' : 'role'} ${s.roles.join(', ')}): ${s.matched ? `matches${s.why ? ` (${s.why})` : ''}` : `does not match: ${s.why}`}`)
    }
  }
  row('Decision', `${e.decision.effect.toUpperCase()}: ${e.decision.reason}`)
  return lines.map(printable).join('\n')
}

/** An approval's ttl as it is configured (15m, 1h, 90s): the largest unit that divides it. */
export function ttlText(seconds: number): string {
  const whole = Math.round(seconds)
  if (whole > 0 && whole % 3600 === 0) return `${whole / 3600}h`
  if (whole > 0 && whole % 60 === 0) return `${whole / 60}m`
  return `${whole}s`
}
