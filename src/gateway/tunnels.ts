// The open WebSocket tunnels of this thread, its MCP notification streams (a 2025-era session's
// GET stream, a 2026-07-28 `subscriptions/listen`: agents/mcp/endpoint.ts) and its upstreams'
// server-sent event streams (upstream/dispatch.ts). A tunnel outlives its handshake, the only
// request that was authenticated and authorized, and a stream its request, so what would refuse
// that request now closes it (a tunnel: close frame 1008, then the TCP close; a stream: its end;
// the record's detail says why):
//
// - the credential expired, at the instant its verification stops accepting it: a JWT's `exp` plus
//   its issuer's clock_tolerance (upstream/tunnel-expiry.ts);
// - the credential revoked: an API key revoked (admin API, `bouncer keys revoke`, another instance),
//   a session signed out, revoked or gone idle. Nothing tells every thread and process of those (the CLI
//   writes the store), so the tunnels' credentials are read again every TUNNEL_RECHECK_MS, through
//   the verifiers' own caches (an API key's record: one store read per key per api_keys.cache);
// - a reload that takes the caller's access away: the route gone or (a tunnel) no longer a
//   WebSocket route, the credential no longer accepted, the policies now denying. Each is decided
//   again against the new runtime when it is swapped in (no I/O: the identity is the request's). A
//   client certificate is also checked again by the new runtime's x509 issuers (their CAs changed).
//   An MCP stream's caller was authenticated by its backend (the endpoint is a public built-in
//   route): the new runtime's backend at its path decides it (Backend.refusalOf: the endpoint
//   moved, its resource, issuer, scopes or allowed origins changed).
//
// The drain sends every tunnel 1001 (going away) at its start, and ends every stream, for clients
// to reconnect to another instance, rather than cutting them at server.shutdown_timeout.
//
// Only upgrades and event streams join: another request costs nothing here.
import { accessDenied, evaluateAccess } from '../access/index.ts'
import { OWN_TOKEN_CLOCK_TOLERANCE_MS, ownTokenRefusal } from '../agents/index.ts'
import { GatewayError } from '../errors/index.ts'
import { parseTarget } from '../http/index.ts'
import { checkClaims, checkIntrospectedClaims, type CredentialInput } from '../identity/index.ts'
import type { Identity, OpenTunnel, OpenTunnels } from '../request/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { atExpiry, credentialExpiredNote } from '../upstream/index.ts'
import type { CompiledRoute, Runtime } from './compile.ts'

/** How often the open tunnels' revocable credentials (API keys, sessions) are read again. */
export const TUNNEL_RECHECK_MS = 1_000

/** The record's note for a tunnel the drain closed. */
export const GOING_AWAY_NOTE = 'The gateway was shutting down: it closed the tunnel (1001 going away) for the client to reconnect to another instance.'

/** The record's note for a tunnel, or a stream, the drain closed. */
export function goingAwayNote(tunnel: OpenTunnel): string {
  return tunnel.what === undefined ? GOING_AWAY_NOTE : `The gateway was shutting down: it ended ${tunnel.what} for the client to reconnect to another instance.`
}

export interface TunnelRegistry extends OpenTunnels {
  readonly size: number
  /** After a reload's swap: closes each tunnel the new runtime would refuse. */
  redecide(rt: Runtime): void
  /** The drain began: every tunnel, and any opened from now on, is sent 1001. */
  goingAway(): void
  /** Reads the revocable credentials again now (the timer's sweep). */
  recheck(): Promise<void>
}

interface Entry {
  readonly tunnel: OpenTunnel
  /** The handshake's credential as the verifier reads it again; null when it cannot be revoked (a JWT, a certificate, none). */
  readonly input: CredentialInput | null
  /** A client certificate's handshake as a reload's runtime checks it again (its x509 issuers' CAs); null for another credential. */
  readonly certificate: CredentialInput | null
  /** What the certificate was last checked under (certificateTrust). */
  trust: string
}

/** The settings a client certificate is checked by, once per runtime: a reload that keeps them checks no certificate again. */
const trustOf = new WeakMap<Runtime, string>()
function certificateTrust(rt: Runtime): string {
  let trust = trustOf.get(rt)
  if (trust === undefined) {
    // The CRLs' own text, not their file's path: a CRL is rewritten in place as it is renewed.
    trust = JSON.stringify([rt.config.issuers.filter((issuer) => issuer.type === 'x509'), rt.config.server.forwarded_client_cert ?? null, rt.config.server.tls?.client_ca ?? null, rt.certificateRevocations])
    trustOf.set(rt, trust)
  }
  return trust
}

/**
 * How long past its expiry the credential's verification still accepts it, in seconds: a token's
 * issuer's clock_tolerance (the gateway's own for an exchanged token); none for the others, whose
 * expiry is checked as it is (a session's end, an API key's, a certificate's notAfter).
 */
function toleranceOf(rt: Runtime, tunnel: OpenTunnel): number {
  const { credential, identity } = tunnel.caller ?? tunnel.ctx
  if (credential === 'exchanged') return OWN_TOKEN_CLOCK_TOLERANCE_MS / 1000
  if (credential !== 'bearer' || identity === null) return 0
  const issuer = rt.config.issuers.find((candidate) => candidate.name === identity.issuerName)
  return issuer !== undefined && 'clock_tolerance' in issuer ? issuer.clock_tolerance / 1000 : 0
}

export function createTunnelRegistry(runtime: () => Runtime, logger: Logger): TunnelRegistry {
  const open = new Map<OpenTunnel, Entry>()
  let revocable = 0
  let timer: NodeJS.Timeout | null = null
  let sweeping: Promise<void> | null = null
  let leaving = false
  /** When the last reload's runtime was swapped in (performance.now(), as a request's startMono: a wall clock stepped back between a handshake and a reload hid the straddle). */
  let redecidedAt = -Infinity

  const close = (tunnel: OpenTunnel, note: string) => tunnel.close(1008, `${note}: the gateway closed ${tunnel.what ?? 'the tunnel'}.`)
  const decide = (rt: Runtime, tunnel: OpenTunnel) => {
    const refusal = refusedBy(rt, tunnel)
    if (refusal !== null) return close(tunnel, `After a config reload, ${refusal}`)
    // A reload that took a CA out of an x509 issuer (one that signed a certificate that leaked)
    // refused a new handshake with its certificates, while the tunnels they opened stayed (a probe).
    const entry = open.get(tunnel)
    if (entry?.certificate && entry.trust !== certificateTrust(rt)) {
      entry.trust = certificateTrust(rt)
      rt.authenticator.authenticate(entry.certificate, ['client_cert']).catch((err: unknown) => {
        if (open.has(tunnel)) close(tunnel, `After a config reload, the caller's certificate is no longer accepted (${err instanceof GatewayError ? `${err.code}: ${err.detail.replace(/\.$/, '')}` : (err as Error).message})`)
      })
    }
  }

  function startTimer(): void {
    if (timer !== null) return
    timer = setInterval(() => void registry.recheck(), TUNNEL_RECHECK_MS)
    timer.unref()
  }

  function stopTimer(): void {
    if (timer === null) return
    clearInterval(timer)
    timer = null
  }

  async function sweep(): Promise<void> {
    const rt = runtime()
    const checks: Promise<void>[] = []
    for (const { tunnel, input } of open.values()) {
      const { credential, identity } = tunnel.caller ?? tunnel.ctx
      if (input === null || credential === null || identity === null) continue
      const pending = rt.authenticator.revoked(input, credential, identity)
      if (pending === null) continue
      checks.push(pending.then((reason) => {
        if (reason !== null) close(tunnel, reason)
      }, (err: unknown) => {
        // The store cannot be read: the tunnel stays (a store's outage is no revocation), and the next sweep tries again.
        logger.debug({ err, request_id: tunnel.ctx.id }, 'a tunnel\'s credential could not be read again')
      }))
    }
    await Promise.all(checks)
  }

  const registry: TunnelRegistry = {
    get size() {
      return open.size
    },
    add(tunnel) {
      if (leaving) {
        tunnel.close(1001, goingAwayNote(tunnel))
        return () => {}
      }
      const { ctx } = tunnel
      const { identity, credential } = tunnel.caller ?? ctx
      const handshake: CredentialInput = { headers: ctx.headers, rawHeaders: ctx.req.rawHeaders, query: ctx.query, socket: ctx.connection, method: ctx.method, secure: ctx.secure, viaTrustedProxy: ctx.viaTrustedProxy, upgrade: tunnel.what === undefined }
      const input = credential === 'api_key' || credential === 'session' ? handshake : null
      const certificate = credential === 'client_cert' && tunnel.caller === undefined ? handshake : null
      // The trust its certificate was checked under: the handshake's runtime's. One that began before
      // the last reload was checked under the trust that reload replaced, so none is known here and
      // the decision below checks it again (taken from the runtime in force, a reload that took its
      // CA out left it open).
      const checkedUnder = certificate === null || ctx.startMono <= redecidedAt ? '' : certificateTrust(runtime())
      open.set(tunnel, { tunnel, input, certificate, trust: checkedUnder })
      if (input !== null && revocable++ === 0) startTimer()
      const tolerance = toleranceOf(runtime(), tunnel)
      // A credential that expired while its answer was awaited fires at once, inside atExpiry: its
      // close waits for the opener to hold the way out this returns. Closed within add, an event
      // stream ended before it had it, and its entry stayed for good (its ctx, and for an API key or
      // a session, a store read every second).
      const disarm = atExpiry(identity, tolerance, () => queueMicrotask(() => {
        if (open.has(tunnel)) tunnel.close(1008, credentialExpiredNote(identity?.expiresAt ?? 0, tolerance, tunnel.what))
      }))
      // Its request began before the last reload, whose decision missed it (it was not open yet: a
      // 101 that came after the swap opened a tunnel on the route the reload took away). Decided
      // now, once its opener holds the way out this returns.
      if (ctx.startMono <= redecidedAt) {
        queueMicrotask(() => {
          if (open.has(tunnel)) decide(runtime(), tunnel)
        })
      }
      return () => {
        disarm()
        if (!open.delete(tunnel)) return
        if (input !== null && --revocable === 0) stopTimer()
      }
    },
    redecide(rt) {
      redecidedAt = performance.now()
      for (const { tunnel } of open.values()) decide(rt, tunnel)
    },
    goingAway() {
      leaving = true
      stopTimer()
      for (const { tunnel } of open.values()) tunnel.close(1001, goingAwayNote(tunnel))
    },
    recheck() {
      // One sweep at a time: a slow store does not pile them up.
      sweeping ??= sweep().finally(() => {
        sweeping = null
      })
      return sweeping
    },
  }
  return registry
}

/** Why the runtime would refuse the tunnel's handshake now (a sentence's end, lower-case), or null when it would allow it. */
function refusedBy(rt: Runtime, tunnel: OpenTunnel): string | null {
  const { ctx } = tunnel
  let route: CompiledRoute
  try {
    route = rt.router.match(ctx.method, parseTarget(ctx.req.url ?? '', ctx.headers?.host)).route
  } catch (err) {
    return `no route takes ${ctx.method} ${ctx.path} (${err instanceof GatewayError ? err.code : 'no match'})`
  }
  // A stream whose caller its backend authenticated: that backend, of this runtime, decides it.
  if (tunnel.caller !== undefined) {
    if (route.backend.refusalOf === undefined) return `route "${route.id}" no longer serves ${tunnel.what ?? 'it'}`
    return route.backend.refusalOf(tunnel.caller, ctx)
  }
  if (tunnel.what === undefined && !route.websocket) return `route "${route.id}" no longer allows WebSocket upgrades`
  if (route.public) return null
  const { identity, credential } = ctx
  if (identity === null || credential === null) return `route "${route.id}" is no longer public`
  const kind = credential === 'exchanged' ? 'bearer' : credential
  if (!route.accept.includes(kind)) return `route "${route.id}" no longer accepts the caller's credential (${credential})`
  if (credential === 'exchanged' || credential === 'bearer') {
    const refusal = credential === 'exchanged' ? ownTokenRefusal(rt.config, identity) : bearerRefusal(rt, identity)
    if (refusal !== null) return refusal
  }
  const access = evaluateAccess(rt.access, identity, route, ctx.method, ctx.clientIp)
  if (access.decision.effect === 'allow') return null
  return `the caller is no longer allowed (${accessDenied(access, identity, route.id, ctx.method).detail.replace(/\.$/, '')})`
}

/**
 * Why a provider's token a tunnel was opened with would be refused under the new config, as its
 * verification would refuse it now: the issuer gone or naming another `iss`, or its claims no longer
 * what the issuer takes (`audiences`, `required_claims`). A reload decided such a tunnel by its
 * route and policies alone, so a new handshake with the token got 401 audience_mismatch while the
 * open tunnel stayed (found by an adversarial probe). The claims are the ones verified at the
 * handshake: no key is fetched, no provider asked.
 */
function bearerRefusal(rt: Runtime, identity: Identity): string | null {
  const issuer = rt.config.issuers.find((candidate) => candidate.name === identity.issuerName)
  if (issuer === undefined || issuer.type !== 'jwt') return `issuer "${identity.issuerName}" of the caller's token is no longer configured`
  if (issuer.issuer !== identity.iss) return `issuer "${identity.issuerName}" no longer names ${identity.iss}, the caller's token's iss`
  try {
    // An opaque token's claims are its introspection answer's, which may carry no exp.
    if (identity.introspectionCache !== undefined) checkIntrospectedClaims(identity.claims, issuer, Date.now())
    else checkClaims(identity.claims, issuer, Date.now())
  } catch (err) {
    if (err instanceof GatewayError) return `the caller's token is no longer accepted (${err.code}: ${err.detail.replace(/\.$/, '')})`
    throw err
  }
  return null
}
