// Browser sign-in (SPEC "Callers, added"): the OIDC authorization code flow with PKCE, state and
// nonce, and the server-side session it ends in. Three endpoints (built-in routes: sign-in,
// callback, sign-out) and one credential verifier (`session`).
//
// - A browser without a session (GET or HEAD, Accept: text/html) is sent to the provider (302)
//   and comes back to the path it asked for: a path on this gateway only (return-to.ts). Any
//   other client gets 401 session_required (or session_expired).
// - The state travels twice: in the provider's round trip and in a short-lived cookie scoped to the
//   callback, so a callback carrying someone else's state (login CSRF, a tampered state) is
//   refused. The cookie carries the whole sign-in under way, sealed (sign-in-state.ts): nothing is
//   stored before a callback succeeds. A replayed callback's code goes back to the provider, which
//   refuses a used code (RFC 6749 §4.1.2): 400, and no second session; a new code for a state
//   that already made a session is refused too (the state is taken once, on the store).
// - The ID token is verified by the same verifier as bearer tokens, with the issuer's keys, its
//   algorithm allow-list and clock tolerance; only its audience is the client_id (OIDC Core §3.1.3.7).
// - The session cookie is 256 random bits; the store knows it by its SHA-256 only. HttpOnly,
//   SameSite as configured, Secure on TLS. Absolute (ttl) and idle timeouts; the claims are
//   refreshed with the refresh token when the ID token expires, and a refusal ends the session.
// - A state-changing request (not GET, HEAD, OPTIONS) carried by the session cookie needs an
//   Origin of this gateway (CSRF); without one, 403 cors_origin_denied. Sign-out is one: only a
//   POST ends the session, a GET answers a page with a button that posts.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { createLru, withinDeadline, type Lru } from '../../collections/index.ts'
import type { IssuerConfig, SignInConfig } from '../../config/index.ts'
import { GatewayError, type ErrorCode, type GatewayErrorOptions } from '../../errors/index.ts'
import type { Identity } from '../../request/index.ts'
import type { Logger } from '../../telemetry/index.ts'
import type { Authenticated, CredentialInput, CredentialVerifier } from '../authenticate.ts'
import { CredentialRefused, rawHeader, UnprovenRefusal } from '../authenticate.ts'
import { checkOrigin as checkSameOrigin, forgeable, publicOrigin as gatewayOrigin, type OriginSettings } from '../origin.ts'
import type { IssuerKeys } from '../issuers.ts'
import { createTokenVerifier, identityFromClaims, type TokenVerifier } from '../verify.ts'
import { clearCookie, hasCookie, parseTarget, readCookie, setCookie, type CookieSettings, type HostAllowList } from '../../http/index.ts'
import { AnswerRejected, IssuerMismatch, SignInRefused, signInProvider, type SignInProvider } from './provider.ts'
import { safeReturnTo } from './return-to.ts'
import { openTokens, sealTokens, type SessionTokens } from './seal.ts'
import { openPending, pendingKey, sealPending, type PendingSignIn } from './sign-in-state.ts'
import { SessionStoreError, type SessionAudience, type SessionRecord, type SessionStore } from './store.ts'

/** 256 bits, base64url: what the gateway writes as a session cookie; anything else is no session. */
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/
/** Claims of the protocol, not of the person: not kept with the session. */
const PROTOCOL_CLAIMS = ['nonce', 'at_hash', 'c_hash', 's_hash', 'exp', 'iat', 'nbf', 'auth_time', 'jti']
const ENDED = 'The session has ended (signed out, revoked or expired): sign in again.'
/** refuse()'s mark for a cookie nobody proved to hold: no session has its hash. */
const UNPROVEN = Symbol('unproven session cookie')
const SIGNED_IN_ELSEWHERE = 'The session was signed in at another provider than sign_in names now: sign in again.'
/** ID tokens carrying many groups (Entra ID, Okta) outgrow an access token's bound. */
const MAX_ID_TOKEN_BYTES = 65_536
/** What a browser keeps of one cookie at least: name, value and attributes (RFC 6265 §6.1). */
const MAX_COOKIE_BYTES = 4_096

/** What a sign-in endpoint answers: written by the built-in route (gateway/built-ins.ts). */
export interface BrowserAnswer {
  status: number
  headers: Record<string, string | string[]>
  body: string
  /** Who signed in (the callback) or out, for the audit record: these endpoints are public routes, which authenticate no one. */
  caller?: Authenticated
}

export interface SignIn {
  readonly store: SessionStore
  readonly cookieName: string
  /** Names the session cookie had before (sign_in.cookie.previous_names, a reload's rename): never forwarded upstream, cleared at the next sign-in or sign-out. */
  readonly formerCookieNames: readonly string[]
  readonly paths: { readonly signIn: string; readonly callback: string; readonly signOut: string }
  /** The client secret, from the secrets store (set at compile and after every refresh). */
  clientSecret: string | undefined
  readonly verifier: CredentialVerifier
  /** GET sign_in_path?return_to=/path: sends the browser to the provider. */
  start(input: CredentialInput): Promise<BrowserAnswer>
  /** GET callback_path?code&state: the provider's answer becomes a session. */
  callback(input: CredentialInput): Promise<BrowserAnswer>
  /** POST sign_out_path (with this gateway's Origin): ends the session, then RP-initiated logout where the provider has it. GET: a page whose button posts. */
  signOut(input: CredentialInput): Promise<BrowserAnswer>
  /** Ends a session by id (CLI, admin API): refused at the next request, on every instance. */
  revoke(id: string): Promise<boolean>
}

export interface SignInOptions {
  config: SignInConfig
  issuer: IssuerConfig
  keys: ReadonlyMap<string, IssuerKeys>
  store: SessionStore
  /** Names the session cookie had before: their sessions are ended, and the cookies cleared, when the browser signs in again or out. */
  formerCookieNames?: readonly string[]
  /** Whose sessions these are: each sign-in accepts only the sessions it made (store.ts, SessionAudience). */
  audience: SessionAudience
  /** Secure by configuration or a TLS listener; otherwise Secure still whenever the browser came over https (a TLS-terminating proxy's X-Forwarded-Proto). */
  cookieSecure: boolean
  logger: Logger
  /** Sign-out also ends the person's session at the provider (RP-initiated logout): the gateway's does; the console's ends only its own. Default true. */
  endsProviderSession?: boolean
  /** server.hosts: without base_url, the redirect URI is built only on a host listed there (when any is). */
  hosts?: HostAllowList
  /** Tests inject a provider; by default openid-client against the issuer. */
  provider?: SignInProvider
  now?: () => number
}

/** A session's tokens, opened from its seal once per refresh, with the refresh token a refresh needs. */
type HeldTokens = SessionTokens & { refreshToken: string }

/**
 * How long a refresh claim holds: past the longest a refresh takes (the provider's discovery and
 * token grant, 10 s each, a key fetch for a new kid, 5 s, the store's write), so it does not lapse
 * while its holder still works; a holder that stops holds the others up this long. How often a
 * request that waits for another's refresh looks for its result.
 */
const REFRESH_CLAIM_MS = 40_000
const REFRESH_POLL_MS = 50
/** How long a sign-out waits for the provider's end_session_endpoint (discovery) before it sends the browser to after_sign_out_path. */
const END_SESSION_WAIT_MS = 3_000
/**
 * Refreshed sessions the store failed to write, by refresh claim: their new tokens are only here
 * (saveRefreshed). Kept with the store, which a reload keeping it shares, not with one config's
 * sign-in: a reload compiled a new one, and the session's next request refreshed with the spent
 * token, signing the person out.
 */
const unsavedSessions = new WeakMap<SessionStore, Lru<SessionRecord>>()
function unsavedIn(store: SessionStore): Lru<SessionRecord> {
  let unsaved = unsavedSessions.get(store)
  if (unsaved === undefined) unsavedSessions.set(store, (unsaved = createLru<SessionRecord>(10_000)))
  return unsaved
}

/**
 * The longest RP-initiated logout redirect sent with id_token_hint. A proxy's buffer for the answer's
 * whole header block is one page by default (nginx's proxy_buffer_size, 4 KB), and a provider's
 * front end takes a request line of 8 KB: a person in many groups got a Location of ~16 KB, and
 * nginx's 502 for a sign-out (the sign-in probe). Past it, client_id alone names the client.
 */
const MAX_END_SESSION_URL_BYTES = 3_072

export function createSignIn(options: SignInOptions): SignIn {
  const { config, issuer, store, logger } = options
  const now = options.now ?? Date.now
  const originSettings: OriginSettings = { baseUrl: config.base_url, hosts: options.hosts }
  const prefix = cookiePrefix(config.cookie.name)
  // A prefixed name is Secure whatever else says: browsers drop a __Host-/__Secure- cookie without it.
  const cookie: CookieSettings = { name: config.cookie.name, secure: options.cookieSecure || prefix !== null, sameSite: config.cookie.same_site }
  // The state cookie is Lax whatever the session's SameSite: the provider's redirect back is a cross-site navigation.
  // One cookie per browser: of two sign-ins begun in two tabs, the later one's replaces the
  // earlier's, whose callback is then refused (state does not match), and a flood of page loads in
  // one browser piles up no cookies.
  const stateCookie: CookieSettings = { name: `${config.cookie.name}_state`, secure: cookie.secure, sameSite: 'lax' }
  // Scoped to the callback, except under __Host-, which browsers take only with Path=/ (RFC 6265bis
  // §4.1.3.2): they refused the state, and every sign-in ended in "state does not match" (a probe).
  // It keeps __Host- rather than turning __Secure- on the callback's path: a sibling subdomain can
  // plant a __Secure- cookie (Domain=) holding its own sign-in's sealed state, a login CSRF that
  // __Host- exists to stop. It travels on every request for the sign-in's few minutes; upstreams
  // never get it (the gateway withholds `<name>_state`).
  const statePath = prefix === '__Host-' ? '/' : config.callback_path
  const ownPaths = new Set([config.sign_in_path, config.callback_path, config.sign_out_path].map((path) => path.toLowerCase().replace(/\/$/, '')))
  const ttl = config.session.ttl
  const idle = config.session.idle
  const touchEvery = Math.min(Math.floor(idle / 10), 60_000)
  const identities = new WeakMap<object, Identity>()
  // Cookie → session id, so a busy browser's cookie is hashed once, not per request (as verified
  // tokens are kept by their whole string). Bounded; an entry lives no longer than a session can.
  const ids = createLru<string>(10_000)
  const refreshing = new Map<string, Promise<SessionRecord | undefined>>()
  const unsaved = unsavedIn(store)
  let storeLoggedAt = -Infinity
  /** The state cookies' key, derived from the store's (`stored`): derived again when the store's changes. */
  let stateKey: { stored: Buffer; key: Buffer } | undefined
  const idTokens: TokenVerifier = createTokenVerifier({
    // An ID token is for this client (aud), and OIDC fixes its claims: the issuer's required_claims
    // are about its access tokens (client_id, scp…), which an ID token need not carry.
    issuers: [{ ...issuer, audiences: [config.client_id], token_types: ['JWT', 'untyped'], required_claims: ['sub'] }],
    keys: options.keys,
    maxTokenBytes: MAX_ID_TOKEN_BYTES,
    cacheEntries: 0,
    logger,
  })
  const signIn: SignIn = {
    store,
    cookieName: cookie.name,
    formerCookieNames: options.formerCookieNames ?? [],
    paths: { signIn: config.sign_in_path, callback: config.callback_path, signOut: config.sign_out_path },
    clientSecret: config.client_secret,
    verifier: {
      kind: 'session',
      presentIn: (input) => hasCookie(input.rawHeaders, cookie.name),
      answersMissing: isBrowserNavigation,
      authenticate,
      revoked,
    },
    start,
    callback,
    signOut,
    revoke: (id) => storeCall(() => store.delete(id)),
  }
  const provider = loggingUnreachable(options.provider ?? signInProvider(issuer, config.client_id, () => signIn.clientSecret), logger, issuer.name)

  async function authenticate(input: CredentialInput) {
    const value = readCookie(input.rawHeaders, cookie.name)
    if (value === undefined) return refuse(input, 'session_required', 'This route needs a signed-in session: sign in with a browser.')
    if (!COOKIE_VALUE.test(value)) return refuse(input, 'session_required', 'The session cookie is not one this gateway issued: sign in again.', UNPROVEN)
    // A WebSocket handshake is a GET, but the tunnel it opens carries whatever the page sends:
    // without this another origin's page opened one as the signed-in person (cross-site WebSocket hijacking).
    if (forgeable(input)) checkOrigin(input)
    const at = now()
    let id = ids.get(value, at)
    if (id === undefined) {
      id = sessionId(value)
      ids.set(value, id, at + ttl)
    }
    // The memory and SQLite stores answer at once: no promise on the hot path.
    let got
    try {
      got = store.get(id)
    } catch (err) {
      throw storeFailure(err)
    }
    const found = got instanceof Promise ? await storeCall(() => got) : got
    // A cookie that names no session is as likely made up as ended: counted by auth_failures (each
    // guess costs a store read), so a flood of random cookies is held back as forged tokens are.
    if (found === undefined) return refuse(input, 'session_expired', ENDED, UNPROVEN)
    if (found.audience !== options.audience) return refuse(input, 'session_required', `The cookie's session was made by the ${found.audience === 'console' ? 'admin console' : 'gateway'}'s sign-in, not this one: sign in here.`)
    if (signedInElsewhere(found)) return refuse(input, 'session_expired', SIGNED_IN_ELSEWHERE)
    let record = found
    const why = endedBecause(record, at)
    if (why !== null) {
      void store.delete(id).catch(() => {})
      return refuse(input, 'session_expired', `The session has expired (${why}): sign in again.`, record)
    }
    if (record.refreshAt !== null && record.refreshAt <= at) record = await refreshOnce(input, record, value)
    if (at - record.lastSeenAt >= touchEvery && !inBackground(input)) void store.touch(id, at).catch((err: unknown) => storeTrouble(err, 'session use not recorded'))
    return { identity: identityOf(record), credential: 'session' as const }
  }

  /**
   * An open tunnel's session, read again: ended (signed out, revoked, idle) or not. Not a use: the
   * session is not touched. Idle as authenticate reads it, whatever the store: memory and SQLite
   * delete an idle session only at their minute's sweep, and Redis never (its key lasts to the
   * absolute end), so the tunnel closed up to a minute late, or never.
   */
  async function revoked(input: CredentialInput): Promise<string | null> {
    // Also under a name the cookie had before: a reload that renamed it left the tunnels opened
    // with the old one unread, so signing out or revoking their session never closed them (a probe).
    const value = [cookie.name, ...signIn.formerCookieNames].map((name) => readCookie(input.rawHeaders, name)).find((found) => found !== undefined)
    if (value === undefined) return null
    const found = await storeCall(async () => store.get(sessionId(value)))
    if (found === undefined) return 'The caller\'s session has ended (signed out, revoked or expired)'
    if (signedInElsewhere(found)) return 'The caller\'s session was signed in at another provider than sign_in names now'
    const why = endedBecause(found, now())
    return why === null ? null : `The caller's session has expired (${why})`
  }

  /**
   * A session made at another provider than sign_in's now: its claims are that provider's word, and
   * its refresh token that provider's. After a reload moved sign_in to another provider, such a
   * session went on as a person of the new one, and its refresh sent the old provider's refresh
   * token to the new one (found by the people probe). The ID token's iss, kept with its claims, tells
   * an entry that kept its name but names another URL. Refused, not deleted: another gateway sharing
   * the store (and the host, cookies knowing no port) may be the one it belongs to.
   */
  function signedInElsewhere(record: SessionRecord): boolean {
    return record.issuer !== issuer.name || (record.claims.iss !== undefined && record.claims.iss !== issuer.issuer)
  }

  /** Why a stored session no longer counts at `at` (its lifetime, or idle as the stores may not yet have swept), or null. */
  function endedBecause(record: SessionRecord, at: number): string | null {
    if (endOf(record) <= at) return `it reached its ${ttl / 1000}s lifetime`
    if (record.lastSeenAt + idle <= at) return `it was idle for more than ${idle / 1000}s`
    // Ended under an earlier, shorter idle timeout: a reload's longer one does not bring it back (store.ts, IdleTimeout).
    return store.idle.endedBefore(record) ? 'it was idle for longer than the idle timeout in force then' : null
  }

  /**
   * A session's absolute end: its own (its cookie's Max-Age says the same), or sooner where a reload
   * shortened the ttl since it was signed in. A reload's idle applied to every session and its ttl
   * to none: a session older than a tightened ttl lasted hours more (found by the people probe).
   */
  function endOf(record: SessionRecord): number {
    return Math.min(record.expiresAt, record.createdAt + ttl)
  }

  /**
   * A page's automatic refresh says so (`X-Bouncer-Background: 1`, the console's live overview): it
   * is not use, so a tab left open lets its session go idle (a probe's stayed signed in for good).
   * A client can only shorten its own session with it.
   */
  function inBackground(input: CredentialInput): boolean {
    const raw = input.rawHeaders
    for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === 'x-bouncer-background') return raw[i + 1] === '1'
    return false
  }

  function identityOf(record: SessionRecord): Identity {
    let identity = identities.get(record.claims)
    if (identity === undefined) {
      const base = identityFromClaims(issuer, { ...record.claims, sub: record.subject })
      identity = Object.freeze({ ...base, expiresAt: Math.floor(endOf(record) / 1000) })
      identities.set(record.claims, identity)
    }
    return identity
  }

  /**
   * A missing or ended session: a browser is sent to sign in (302), anyone else gets 401. `ended`:
   * the stored session the cookie names (its hash matched, so the cookie is proven), which the audit
   * record names, as a revoked API key's; it named no one, and `bouncer audit --principal` missed a
   * person disabled at the provider whose browser kept knocking (the sessions probe). UNPROVEN: a
   * cookie that names no session (or is none the gateway makes), which auth_failures counts.
   */
  async function refuse(input: CredentialInput, code: ErrorCode, detail: string, ended?: SessionRecord | typeof UNPROVEN): Promise<never> {
    const refusal = (options: GatewayErrorOptions) =>
      ended === undefined ? new GatewayError(code, options)
        : ended === UNPROVEN ? new UnprovenRefusal(code, options)
          : new CredentialRefused(code, options, { identity: identityOf(ended), credential: 'session' })
    // A cookie that names no session is cleared with its answer: counted by auth_failures, a browser
    // whose session was swept or revoked would otherwise be counted at every request a page of it
    // sends (its polling), until its address were held back. A navigation sent to sign in too: its
    // redirect once set only the state cookie, and every page load until the person signed in sent
    // the dead cookie again — 429 from the burst's end (found by the identity probe).
    const clear = ended === UNPROVEN ? [clearCookie(secureFor(input, cookie))] : []
    if (!isBrowserNavigation(input)) throw refusal(clear.length === 0 ? { detail } : { detail, headers: { 'set-cookie': clear } })
    const returnTo = safeReturnTo(input.target ?? '/') ?? '/'
    const answer = await beginSignIn(input, returnTo)
    throw refusal({ status: 302, detail, headers: { location: answer.location, 'set-cookie': [...clear, answer.cookie] } })
  }

  async function beginSignIn(input: CredentialInput, returnTo: string): Promise<{ location: string; cookie: string }> {
    // 256 bits each (RFC 7636 §4.1: a verifier of 43 base64url characters).
    const state = randomBytes(32).toString('base64url')
    const nonce = randomBytes(32).toString('base64url')
    const codeVerifier = randomBytes(32).toString('base64url')
    const key = await stateCookieKey()
    const pending: PendingSignIn = { state, nonce, codeVerifier, returnTo, expiresAt: now() + config.login_timeout }
    const cookieOptions = { maxAgeSeconds: Math.ceil(config.login_timeout / 1000), path: statePath }
    let set = setCookie(secureFor(input, stateCookie), sealPending(pending, key), cookieOptions)
    // A cookie a browser would drop is a sign-in that cannot finish: the page asked for is given up for '/'.
    if (set.length > MAX_COOKIE_BYTES) set = setCookie(secureFor(input, stateCookie), sealPending({ ...pending, returnTo: '/' }, key), cookieOptions)
    const url = await provider.authorizationUrl({
      redirect_uri: `${publicOrigin(input)}${config.callback_path}`,
      scope: config.scopes.join(' '),
      response_type: 'code',
      code_challenge: hash('sha256', codeVerifier, 'base64url'), // RFC 7636 §4.2, S256
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    return { location: url.href, cookie: set }
  }

  /**
   * The key this sign-in's state cookies are sealed with, from the one the session store keeps
   * (shared by every instance and worker using it), read at each sign-in's start and callback. Kept
   * for 60 s, a key made anew (Redis emptied) was taken up by each worker and instance at its own
   * time: until the last had, a sign-in begun at one and called back at another was refused (a
   * probe: 3 of 8 with two workers). One store read per sign-in step, and a page load without a
   * session is one (it begins a sign-in): an anonymous browser's every page load reads the store.
   */
  async function stateCookieKey(): Promise<Buffer> {
    const stored = await storeCall(() => store.signInKey())
    if (stateKey === undefined || !stateKey.stored.equals(stored)) stateKey = { stored, key: pendingKey(stored, options.audience, config.client_id) }
    return stateKey.key
  }

  /**
   * Is `path` (a safe return_to) one of sign-in's own endpoints, as the router matches it (case,
   * a trailing slash, percent-encoded letters)? Sent back to the callback after signing in, the
   * person met 400 "state does not match" (its state cookie just cleared); back to the sign-in,
   * they went round the provider again and the session just made was ended (the sessions probe).
   */
  function ownEndpoint(path: string): boolean {
    let segments
    try {
      segments = parseTarget(path.split('#')[0] as string, undefined).segments
    } catch {
      return false // a path the router refuses (bad_path) is no endpoint of sign-in's either
    }
    const matched = `/${segments.join('/')}`.toLowerCase().replace(/\/$/, '')
    return ownPaths.has(matched)
  }

  async function start(input: CredentialInput): Promise<BrowserAnswer> {
    onlyMethods(input, ['GET', 'HEAD'], config.sign_in_path)
    const asked = new URLSearchParams(input.query).get('return_to') ?? '/'
    const returnTo = safeReturnTo(asked)
    if (returnTo === null) throw new GatewayError('bad_request', { detail: 'return_to must be a path on this gateway (starting with a single /).' })
    if (ownEndpoint(returnTo)) throw new GatewayError('bad_request', { detail: 'return_to must be a page of the gateway, not one of its sign-in endpoints (sign-in, callback, sign-out).' })
    const { location, cookie: set } = await beginSignIn(input, returnTo)
    // Its state cookie is this browser's alone: a shared cache (a CDN that keeps redirects) must not hand it on.
    return { status: 302, headers: { location, 'set-cookie': set, 'cache-control': 'no-store' }, body: '' }
  }

  async function callback(input: CredentialInput): Promise<BrowserAnswer> {
    onlyMethods(input, ['GET'], config.callback_path)
    const query = new URLSearchParams(input.query)
    const state = query.get('state')
    const sent = readCookie(input.rawHeaders, stateCookie.name)
    // The browser that began the sign-in holds it, sealed, in its state cookie; any other browser's callback is refused.
    const pending = state === null || sent === undefined ? null : openPending(sent, await stateCookieKey())
    if (state === null || pending === null || !sameText(state, pending.state)) {
      throw new GatewayError('bad_request', { detail: 'The sign-in\'s state does not match the one this browser began with: start again.' })
    }
    if (pending.expiresAt <= now()) {
      throw new GatewayError('bad_request', { detail: `This sign-in took longer than login_timeout (${Math.ceil(config.login_timeout / 1000)}s) at the provider: start again.` })
    }
    const providerError = query.get('error')
    if (providerError !== null) {
      throw new GatewayError('bad_request', { detail: `The provider did not sign you in (${providerError.slice(0, 64).replace(/[^\x20-\x7e]/g, '?')}).` })
    }
    const redirectUri = `${publicOrigin(input)}${config.callback_path}`
    let tokens
    try {
      tokens = await provider.exchangeCode(new URL(`${redirectUri}?${input.query}`), { state, nonce: pending.nonce, codeVerifier: pending.codeVerifier, redirectUri })
    } catch (err) {
      if (err instanceof IssuerMismatch) throw new GatewayError('bad_request', { detail: `The sign-in's answer does not say it comes from the provider it began at: ${err.message} (RFC 9207). Start again.`, cause: err })
      if (err instanceof AnswerRejected) throw rejectedAnswer(err)
      if (err instanceof SignInRefused) throw new GatewayError('bad_request', { detail: 'The provider refused the sign-in: its code is invalid, expired or already used (a replayed callback). Start again.', cause: err })
      throw err
    }
    if (tokens.idToken === null) throw new GatewayError('bad_request', { detail: 'The provider answered without an ID token.' })
    let claims
    try {
      claims = await verifiedClaims(tokens.idToken)
    } catch (err) {
      throw err instanceof AnswerRejected ? rejectedAnswer(err) : err
    }
    if (claims.nonce !== pending.nonce) throw new GatewayError('bad_request', { detail: 'The ID token\'s nonce is not this sign-in\'s.' })
    // State and nonce are one-time values (RFC 6749 §10.12, OIDC Core §15.5.2): the authorization URL
    // opened again (the back button, a copy) gave a new code for them, and the same state cookie made
    // a second session (the sign-in probe). Taken once on the store, after the provider's answer
    // passed its checks, so only a real sign-in writes, and a 503 on the way leaves it to retry.
    if (!(await storeCall(() => store.claimRefresh(`sign-in:${hash('sha256', state, 'base64url').slice(0, 22)}`, pending.expiresAt, now())))) {
      throw new GatewayError('bad_request', { detail: 'This sign-in has already been completed (a replayed callback): start again.' })
    }
    await endEarlierSession(readCookie(input.rawHeaders, cookie.name))
    const formerCookies = await endFormerSessions(input)
    const value = randomBytes(32).toString('base64url')
    const at = now()
    const record: SessionRecord = {
      id: sessionId(value),
      issuer: issuer.name,
      subject: claims.sub as string,
      claims: personalClaims(claims),
      createdAt: at,
      lastSeenAt: at,
      idleUntil: at + idle,
      expiresAt: at + ttl,
      refreshAt: tokens.refreshToken !== null && typeof claims.exp === 'number' ? claims.exp * 1000 : null,
      sealed: sealTokens({ idToken: tokens.idToken, refreshToken: tokens.refreshToken }, value),
      audience: options.audience,
    }
    await storeCall(() => store.put(record))
    logger.info({ session: record.id, issuer: issuer.name, subject: record.subject }, 'signed in')
    const cookies = [setCookie(secureFor(input, cookie), value, { maxAgeSeconds: Math.floor(ttl / 1000) }), clearCookie(secureFor(input, stateCookie), statePath), ...formerCookies]
    const caller = { identity: identityOf(record), credential: 'session' as const }
    if (config.cookie.same_site === 'strict') {
      // A Strict cookie is not sent on a navigation a cross-site redirect chain began: go on from this origin.
      const href = escapeHtml(pending.returnTo)
      return { status: 200, headers: { 'set-cookie': cookies, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }, body: `<!doctype html><meta http-equiv="refresh" content="0;url=${href}"><a href="${href}">Continue</a>`, caller }
    }
    return { status: 302, headers: { location: pending.returnTo, 'set-cookie': cookies, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }, body: '', caller }
  }

  /**
   * The session this browser held before signing in again is ended, not only its cookie replaced:
   * it stayed valid to its ttl, so a copy of the old cookie (taken from this browser, or left by the
   * person who used it before) kept working after the new sign-in (an adversarial probe).
   */
  async function endEarlierSession(earlier: string | undefined): Promise<void> {
    if (earlier === undefined || !COOKIE_VALUE.test(earlier)) return
    const id = sessionId(earlier)
    const record = await storeCall(() => store.get(id))
    // Another sign-in's session is not this one's to end.
    if (record?.audience !== options.audience) return
    await storeCall(() => store.delete(id))
    logger.info({ session: id, issuer: record.issuer, subject: record.subject }, 'session ended: the browser signed in again')
  }

  /**
   * Sessions under a name the cookie had before a rename, at a sign-in or sign-out: ended, and
   * their cookies cleared (the Set-Cookie values returned), since the browser would send one on, a
   * live session's credential, until it expired. The cookies are cleared even when the store
   * cannot end their sessions (logged).
   */
  async function endFormerSessions(input: CredentialInput): Promise<string[]> {
    const clear: string[] = []
    for (const name of signIn.formerCookieNames) {
      const earlier = readCookie(input.rawHeaders, name)
      if (earlier === undefined) continue
      clear.push(clearCookie(secureFor(input, { name, secure: cookie.secure || cookiePrefix(name) !== null, sameSite: cookie.sameSite })))
      try {
        await endEarlierSession(earlier)
      } catch (err) {
        logger.warn({ err, cookie_name: name }, 'the session of a cookie under a former name was not ended: the store failed (its cookie is cleared)')
      }
    }
    return clear
  }

  async function signOut(input: CredentialInput): Promise<BrowserAnswer> {
    onlyMethods(input, ['GET', 'HEAD', 'POST'], config.sign_out_path)
    // Only a POST from this gateway's own pages ends the session: a GET did, and any site could
    // sign people out with a link or an image, the Lax cookie going along (an adversarial probe).
    // A GET (a link, a typed address) gets a page whose button posts.
    if (input.method !== 'POST') return signOutPage()
    checkOrigin(input)
    const value = readCookie(input.rawHeaders, cookie.name)
    let ended: { session: string; tokens: SessionTokens | null } | null = null
    let caller: Authenticated | undefined
    if (value !== undefined && COOKIE_VALUE.test(value)) {
      const id = sessionId(value)
      try {
        const record = await storeCall(() => store.get(id))
        // Another sign-in's session is not this one's to end (nor its tokens to send the provider).
        if (record?.audience === options.audience) {
          // A session made at another provider than sign_in names now (a reload moved it) ends too,
          // but its tokens are that provider's credentials: sent to this one (its refresh token to the
          // revocation endpoint, its ID token as id_token_hint), they reached another party (the sessions probe).
          const elsewhere = signedInElsewhere(record)
          ended = { session: id, tokens: elsewhere ? null : openTokens(record.sealed, value) }
          await storeCall(() => store.delete(id))
          caller = { identity: identityOf(record), credential: 'session' }
          logger.info({ session: id, issuer: record.issuer, subject: record.subject }, 'signed out')
          if (elsewhere && record.sealed !== null) logger.info({ session: id, issuer: record.issuer }, 'the signed-out session\'s refresh token is left at the provider it was signed in at: sign_in names another now')
        }
      } catch (err) {
        throw signOutUnstored(err, input, id)
      }
    }
    const after = `${publicOrigin(input)}${config.after_sign_out_path}`
    const refreshToken = ended?.tokens?.refreshToken ?? null
    // Not waited for: the person is signed out here whatever the provider does, and a provider that
    // holds the request would hold the sign-out's answer for its 10 s.
    if (ended !== null && refreshToken !== null) {
      if (options.endsProviderSession !== false) void revokeRefreshToken(refreshToken, ended.session)
      // The console's sign-out ends only its own session: its refresh token shares the grant of the
      // person's gateway sessions (the same client, the same provider session), and providers that
      // revoke a whole grant (oidc-provider; Keycloak ends the client's session) ended those at
      // their next refresh (found by the people probe).
      else logger.debug({ session: ended.session, issuer: issuer.name }, 'the signed-out session\'s refresh token is left at the provider: revoking it would end the grant the person\'s other sessions share')
    }
    const idToken = ended?.tokens?.idToken ?? null
    let location = config.after_sign_out_path
    if (options.endsProviderSession !== false) {
      try {
        // Waited for briefly: a provider that does not answer held the sign-out's answer for the
        // client's 10 s, every time (discovery, not made yet or failed, is tried again; the sessions probe).
        const parameters = { client_id: config.client_id, post_logout_redirect_uri: after }
        let endSession = await withinDeadline(provider.endSessionUrl({ ...parameters, ...(idToken === null ? {} : { id_token_hint: idToken }) }), END_SESSION_WAIT_MS, 'the provider\'s end_session_endpoint', () => {})
        if (endSession && idToken !== null && endSession.href.length > MAX_END_SESSION_URL_BYTES) {
          // OIDC RP-Initiated Logout §2: client_id lets the provider check post_logout_redirect_uri; it may ask the person to confirm.
          logger.debug({ session: ended?.session, issuer: issuer.name, bytes: endSession.href.length }, 'RP-initiated logout without id_token_hint: the ID token would make the redirect too long for proxies')
          endSession = await provider.endSessionUrl(parameters)
        }
        if (endSession) location = endSession.href
      } catch (err) {
        // The session is over here whatever the provider says; its own session ends another time.
        logger.warn({ err, issuer: issuer.name }, 'RP-initiated logout skipped: the provider cannot be reached')
      }
    }
    // Not Clear-Site-Data "cookies": it clears the whole registrable domain's cookies (the SSO's and
    // every sibling application's on the company domain), not just this gateway's.
    const formerCookies = await endFormerSessions(input)
    return { status: 302, headers: { location, 'set-cookie': [clearCookie(secureFor(input, cookie)), ...formerCookies], 'cache-control': 'no-store' }, body: '', ...(caller === undefined ? {} : { caller }) }
  }

  /**
   * A sign-out the store could not record: the browser is signed out all the same (its cookie
   * cleared), and the 503 says the session itself may still stand. It cleared nothing, and once the
   * store answered again the browser was signed in as before: on a shared computer, the next person
   * was the one who had signed out (found by the people probe).
   */
  function signOutUnstored(err: unknown, input: CredentialInput, id: string): unknown {
    if (!(err instanceof GatewayError) || err.code !== 'identity_provider_unavailable') return err
    logger.warn({ err: err.cause, session: id }, 'sign-out could not end the session in the store: its cookie was cleared in the browser; revoke the session once the store answers (bouncer sessions revoke)')
    return new GatewayError(err.code, {
      detail: `You are signed out in this browser (its cookie is cleared), but the session store cannot be reached right now, so the session itself could not be ended: it lasts until ${idle / 1000}s unused, unless an operator revokes it.`,
      headers: { ...err.headers, 'set-cookie': clearCookie(secureFor(input, cookie)), 'cache-control': 'no-store' },
      cause: err.cause,
    })
  }

  /**
   * The signed-out session's refresh token, revoked at the provider (RFC 7009) where it has a
   * revocation_endpoint: deleted with the session here, it was still good at the provider until it
   * expired (days, with some providers for good), for whoever had read it from the store. Never
   * rejects: a failure is logged, and the session is over here either way.
   */
  async function revokeRefreshToken(refreshToken: string, session: string): Promise<void> {
    try {
      const revoked = await provider.revokeRefreshToken(refreshToken)
      if (revoked) logger.info({ session, issuer: issuer.name }, 'the signed-out session\'s refresh token was revoked at the provider')
    } catch (err) {
      logger.warn({ err, session, issuer: issuer.name }, 'the signed-out session\'s refresh token could not be revoked at the provider: it stays good there until it expires')
    }
  }

  /** What a GET of sign_out_path answers: a button that signs out (a same-origin form post carries the Origin checkOrigin needs). */
  function signOutPage(): BrowserAnswer {
    const action = escapeHtml(config.sign_out_path)
    return {
      status: 200,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        // Not framed by another site (a click tricked out of the person); no script at all.
        'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
        'x-frame-options': 'DENY',
        // The form post's Origin is sent: under no-referrer browsers send `Origin: null`.
        'referrer-policy': 'same-origin',
      },
      body: `<!doctype html><meta charset="utf-8"><title>Sign out</title><form method="post" action="${action}"><button type="submit">Sign out</button></form>`,
    }
  }

  async function refreshOnce(input: CredentialInput, record: SessionRecord, value: string): Promise<SessionRecord> {
    let pending = refreshing.get(record.id)
    if (!pending) {
      pending = refresh(record, value).finally(() => refreshing.delete(record.id))
      refreshing.set(record.id, pending)
    }
    let refreshed
    try {
      refreshed = await pending
    } catch (err) {
      if (err instanceof AnswerRejected) return refuse(input, 'session_expired', `The provider's answer to this session's refresh fails its checks (${err.message.replace(/[^\x20-\x7e]/g, '?').replace(/\.$/, '')}): sign in again.`, record)
      if (err instanceof SignInRefused) return refuse(input, 'session_expired', 'The provider no longer vouches for this session (its refresh token was refused): sign in again.', record)
      throw err
    }
    if (refreshed === undefined) return refuse(input, 'session_expired', ENDED)
    return refreshed
  }

  /**
   * The session with its claims refreshed; undefined when it was ended (signed out, revoked) while
   * the provider was asked. Written with update, not put: an upsert would bring an ended session
   * back, its cookie working again (found by an adversarial probe).
   */
  async function refresh(record: SessionRecord, value: string): Promise<SessionRecord | undefined> {
    const tokens = openTokens(record.sealed, value)
    if (tokens?.refreshToken == null) {
      const kept = { ...record, refreshAt: null }
      return (await storeCall(() => store.update(kept))) ? kept : undefined
    }
    // refreshOnce keeps to one refresh in this gateway; the claim, across every worker and gateway on
    // the store. It names the tokens it replaces: a refresh that succeeds writes new ones (a new
    // seal), so its claim need not be let go, and a request that read the old record late finds it held.
    const claim = `${record.id}@${hash('sha256', record.sealed ?? '', 'base64url').slice(0, 22)}`
    const kept = unsaved.get(claim, now())
    if (kept !== undefined) return saveRefreshed(kept, claim)
    const held: HeldTokens = { ...tokens, refreshToken: tokens.refreshToken }
    const until = await claimed(claim)
    if (until === undefined) return refreshedElsewhere(record, held, value, claim)
    return refreshHolding(record, held, value, claim, until)
  }

  /**
   * The claim's `until` when this request took it; undefined while another holds it. A claim the
   * store did not confirm in time may still be written (Redis pausing writes in a failover): it is
   * let go behind it, or it held no one's refresh and the session's requests waited for its 40 s
   * (found by the people probe).
   */
  async function claimed(claim: string): Promise<number | undefined> {
    const at = now()
    const until = at + REFRESH_CLAIM_MS
    try {
      return (await store.claimRefresh(claim, until, at)) ? until : undefined
    } catch (err) {
      void store.releaseRefresh(claim, until).catch(() => {})
      throw storeFailure(err)
    }
  }

  /** The refresh, by the holder of its claim, which it lets go (if still its own) when the provider's refresh failed. */
  async function refreshHolding(record: SessionRecord, tokens: HeldTokens, value: string, claim: string, until: number): Promise<SessionRecord | undefined> {
    let refreshed
    try {
      refreshed = await refreshWithProvider(record, tokens, value)
    } catch (err) {
      // A retry, or a request that waited, need not wait for the claim to lapse.
      await store.releaseRefresh(claim, until).catch(() => {})
      throw err
    }
    return saveRefreshed(refreshed, claim)
  }

  /**
   * The refreshed session, written; undefined when it ended meanwhile. The provider may have rotated
   * the refresh token, spending the one the store holds: when the store fails the write, the new
   * one is only here. The session's last refresh answered 503 and kept the spent token, and its next
   * request refreshed with it: invalid_grant, the person signed out (the sign-in probe). Kept in
   * this process for the session's next request, which writes it instead of asking the provider
   * again; the claim is not let go, so no other process spends the old token while it holds.
   */
  async function saveRefreshed(refreshed: SessionRecord, claim: string): Promise<SessionRecord | undefined> {
    let written
    try {
      written = await store.update(refreshed)
    } catch (err) {
      unsaved.set(claim, refreshed, refreshed.expiresAt)
      if (err instanceof SessionStoreError) logger.warn({ err, session: refreshed.id, subject: refreshed.subject }, 'a refreshed session could not be saved: its new tokens are kept in this process for its next request (a restart first ends it at its next refresh)')
      throw storeFailure(err, 'Your sign-in was renewed at the provider, but the session store could not save it right now (the gateway\'s log says why): try again shortly.')
    }
    unsaved.delete(claim)
    return written ? refreshed : undefined
  }

  /** The session with the provider's new tokens and claims, not yet written. */
  async function refreshWithProvider(record: SessionRecord, tokens: HeldTokens, value: string): Promise<SessionRecord> {
    const { refreshToken } = tokens
    let fresh
    let claims = record.claims
    let refreshAt: number | null
    try {
      fresh = await provider.refresh(refreshToken)
      refreshAt = fresh.expiresIn === null ? null : now() + fresh.expiresIn * 1000
      if (fresh.idToken !== null) {
        const verified = await verifiedClaims(fresh.idToken)
        // OIDC Core §12.2: the refreshed ID token is about the same person.
        if (verified.sub !== record.subject) throw new AnswerRejected('the refreshed ID token names another subject')
        claims = personalClaims(verified)
        if (typeof verified.exp === 'number') refreshAt = verified.exp * 1000
      }
    } catch (err) {
      // Refused, or answered with an ID token that fails its checks: the session ends. The latter
      // kept it, and every request with its cookie asked the provider again (an adversarial probe).
      if (err instanceof SignInRefused) {
        await store.delete(record.id).catch(() => {})
        logger.info({ session: record.id, subject: record.subject, reason: err.message }, 'session ended: refresh refused')
      }
      throw err
    }
    return {
      ...record,
      claims,
      refreshAt: refreshAt === null || refreshAt >= record.expiresAt ? null : refreshAt,
      sealed: sealTokens({ idToken: fresh.idToken ?? tokens.idToken, refreshToken: fresh.refreshToken ?? refreshToken }, value),
    }
  }

  /**
   * Another worker or gateway holds the refresh claim: the session once it has written it
   * (undefined if it ended). If it lets the claim go without writing (its refresh failed) or stops
   * (the claim lapses), this one takes the claim and refreshes. On the monotonic clock: `now` may
   * be a test's.
   */
  async function refreshedElsewhere(record: SessionRecord, tokens: HeldTokens, value: string, claim: string): Promise<SessionRecord | undefined> {
    const deadline = performance.now() + REFRESH_CLAIM_MS + REFRESH_POLL_MS
    while (performance.now() < deadline) {
      await delay(REFRESH_POLL_MS)
      const current = await storeCall(async () => store.get(record.id))
      if (current === undefined) return undefined
      if (current.refreshAt !== record.refreshAt || current.sealed !== record.sealed) return current
      const until = await claimed(claim)
      if (until !== undefined) return refreshHolding(record, tokens, value, claim, until)
    }
    throw new GatewayError('identity_provider_unavailable', { detail: 'The session\'s sign-in is being refreshed elsewhere and did not finish in time: try again.' })
  }

  /**
   * The ID token's claims; AnswerRejected when it fails a check. The bearer verifier's refusals are
   * 401s with a Bearer challenge, which the callback passed on to the browser (a probe: 401
   * signature_invalid, `WWW-Authenticate: Bearer error="invalid_token"`, for a token the browser never sent).
   */
  async function verifiedClaims(idToken: string): Promise<Record<string, unknown>> {
    let identity
    try {
      identity = await idTokens.verify(`Bearer ${idToken}`, '')
    } catch (err) {
      if (err instanceof GatewayError && err.status === 401) throw new AnswerRejected(err.detail, { cause: err })
      throw err
    }
    const claims = identity.claims as Record<string, unknown>
    // OIDC Core §3.1.3.7: with several audiences, azp names the client.
    if (claims.azp !== undefined && claims.azp !== config.client_id) throw new AnswerRejected('the ID token was issued to another client (azp)')
    if (typeof claims.sub !== 'string') throw new AnswerRejected('the ID token names no subject')
    return claims
  }

  /** A cookie is Secure whenever the browser reached the gateway over https, unless cookie.secure says false. */
  function secureFor(input: CredentialInput, settings: CookieSettings): CookieSettings {
    if (settings.secure || config.cookie.secure === false || !publicOrigin(input).startsWith('https:')) return settings
    return { ...settings, secure: true }
  }

  /** CSRF: a state-changing request (or a WebSocket handshake) carried by the session cookie must come from a page of this gateway. */
  function checkOrigin(input: CredentialInput): void {
    checkSameOrigin(input, publicOrigin(input), 'session cookie', true)
  }

  /** The gateway's origin as the browser sees it: base_url, else the scheme and Host of the request. */
  function publicOrigin(input: CredentialInput): string {
    return gatewayOrigin(input, originSettings, 'Sign-in')
  }

  /** A store that cannot be read or written: 503, fail closed. */
  async function storeCall<T>(work: () => T | Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (err) {
      throw storeFailure(err)
    }
  }

  /**
   * The 503 for a store's failure, logged with its cause. A store that answered but refused (Redis
   * at its maxmemory: OOM; a read-only replica; a full disk) failed every sign-in and every page
   * load without a session with "cannot be reached", and the log said nothing (the sessions probe).
   */
  function storeFailure(err: unknown, detail = 'The session store cannot be used right now (the gateway\'s log says why); try again shortly.'): unknown {
    if (!(err instanceof SessionStoreError)) return err
    storeTrouble(err, 'session store failed: sign-ins and session requests answer 503')
    return new GatewayError('identity_provider_unavailable', { detail, headers: { 'retry-after': '1' }, cause: err })
  }

  /** A store's failure in the log, at most every STORE_LOG_MS: while it lasts, every request that needs the store fails alike. */
  function storeTrouble(err: unknown, message: string): void {
    if (performance.now() - storeLoggedAt < STORE_LOG_MS) return
    storeLoggedAt = performance.now()
    logger.warn({ err, store: store.kind, location: store.location }, message)
  }

  return signIn
}

/** The name's prefix whose rules browsers enforce (RFC 6265bis §4.1.3, matched case-insensitively), or null. */
function cookiePrefix(name: string): '__Host-' | '__Secure-' | null {
  const lower = name.toLowerCase()
  return lower.startsWith('__host-') ? '__Host-' : lower.startsWith('__secure-') ? '__Secure-' : null
}

/** How often a failing session store is logged. */
const STORE_LOG_MS = 10_000
/** How often a provider that cannot be reached is logged: each sign-in step fails alike while it is down. */
const UNREACHABLE_LOG_MS = 10_000

/**
 * The provider, its unreachability logged with why (refused, a timeout, a TLS or DNS failure).
 * A sign-in, a callback or a refresh that could not reach it answered 503 "cannot be reached right
 * now" and logged nothing: the reason was nowhere an operator could read it (an adversarial probe).
 */
function loggingUnreachable(provider: SignInProvider, logger: Logger, issuerName: string): SignInProvider {
  let lastLog = -Infinity
  const logged = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work()
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'identity_provider_unavailable' && performance.now() - lastLog >= UNREACHABLE_LOG_MS) {
        lastLog = performance.now()
        logger.warn({ err: err.cause, issuer: issuerName, step }, 'sign-in provider cannot be reached')
      }
      throw err
    }
  }
  return {
    authorizationUrl: (parameters) => logged('authorization', () => provider.authorizationUrl(parameters)),
    exchangeCode: (callbackUrl, checks) => logged('code exchange', () => provider.exchangeCode(callbackUrl, checks)),
    refresh: (refreshToken) => logged('refresh', () => provider.refresh(refreshToken)),
    // Sign-out logs its own skip of RP-initiated logout, and of the refresh token's revocation.
    endSessionUrl: (parameters) => provider.endSessionUrl(parameters),
    revokeRefreshToken: (refreshToken) => provider.revokeRefreshToken(refreshToken),
  }
}

/** A page load: what a browser sends when a person opens a link (Accept: text/html, GET or HEAD). */
function isBrowserNavigation(input: CredentialInput): boolean {
  // A proxy's auth sub-request (nginx auth_request) cannot pass a redirect on: it gets the 401.
  if (input.forwardAuth === true) return false
  const method = input.method ?? 'GET'
  if (method !== 'GET' && method !== 'HEAD') return false
  return rawHeader(input.rawHeaders, 'accept')?.includes('text/html') === true
}

function onlyMethods(input: CredentialInput, methods: readonly string[], path: string): void {
  if (!methods.includes(input.method ?? 'GET')) {
    throw new GatewayError('method_not_allowed', { detail: `${path} answers ${methods.join(' and ')}.`, headers: { allow: methods.join(', ') } })
  }
}

/** The store's name for a session: the cookie's hash (the cookie itself is never stored). */
export function sessionId(cookieValue: string): string {
  return hash('sha256', cookieValue, 'hex').slice(0, 32)
}

function personalClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(claims)) if (!PROTOCOL_CLAIMS.includes(name)) kept[name] = value
  return Object.freeze(kept)
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** The callback's 400 for a provider's answer that fails a check, saying which: not "the code was already used", not "cannot be reached". */
function rejectedAnswer(err: AnswerRejected): GatewayError {
  const reason = err.message.replace(/[^\x20-\x7e]/g, '?').replace(/\.$/, '')
  return new GatewayError('bad_request', { detail: `The provider's answer fails the sign-in's checks: ${reason}. Start again; if it keeps happening, the provider's clock or its settings for this client are off.`, cause: err })
}
