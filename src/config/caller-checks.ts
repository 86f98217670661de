// Checks about how callers get in (SPEC "Callers, added"): API keys, token introspection and CORS.
// Errors for settings that cannot work or would open a hole; warnings for ones that do nothing.
import { isManagedVariant, MANAGED_REQUEST_HEADERS } from '../http/index.ts'
import type { Finding } from './diagnostics.ts'
import { API_KEYS_ISSUER, type Config } from './schema.ts'
import { addressSet, type Cidr } from './values.ts'

export function callerFindings(config: Config): Finding[] {
  return [...apiKeyFindings(config), ...discoveryFindings(config), ...cooldownFindings(config), ...introspectionFindings(config), ...corsFindings(config), ...forwardAuthFindings(config)]
}

/**
 * An issuer whose keys are found through discovery (no jwks_uri, and not one that only introspects)
 * must be a URL discovery can read: `issuer: sso.example.com` passed `bouncer check`, and serve then
 * retried "Failed to parse URL from sso.example.com/.well-known/openid-configuration" for good,
 * every token 503 (found by an adversarial probe). OpenID Connect Discovery 1.0 §2: an issuer is an
 * https URL without query or fragment (http is taken too, as for jwks_uri).
 */
function discoveryFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  config.issuers.forEach((issuer, i) => {
    if (issuer.type !== 'jwt' || issuer.jwks_uri !== undefined || issuer.introspection !== undefined || discoverable(issuer.issuer)) return
    findings.push({
      severity: 'error',
      path: ['issuers', i, 'issuer'],
      message: `issuer "${issuer.issuer}" is no http(s) URL without query or fragment, so its keys cannot be found through discovery ({issuer}/.well-known/openid-configuration): write the iss its tokens carry, with its scheme, or give jwks_uri`,
    })
  })
  return findings
}

/**
 * `jwks_cooldown: 0s` turns off the one bound on fetches a token can start: every token naming a
 * kid the issuer does not publish fetches its keys again, so any caller, unauthenticated, had the
 * gateway fetch them as fast as it sent such tokens (a probe: 20 bogus kids, 20 fetches). Allowed,
 * but said. Not for an issuer that only introspects: it loads no keys.
 */
function cooldownFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  config.issuers.forEach((issuer, i) => {
    if (issuer.type !== 'jwt' || issuer.jwks_cooldown > 0 || (issuer.introspection !== undefined && issuer.jwks_uri === undefined)) return
    findings.push({
      severity: 'warning',
      path: ['issuers', i, 'jwks_cooldown'],
      message: `0s: every token naming a kid issuer "${issuer.name}" does not publish fetches its keys again, so any caller can have the gateway fetch them as fast as it sends such tokens; a cool-down of a few seconds still picks up a rotated key at its first token`,
    })
  })
  return findings
}

function discoverable(issuer: string): boolean {
  try {
    const url = new URL(issuer)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.search === '' && url.hash === ''
  } catch {
    return false
  }
}

/**
 * A forward-auth peer whose X-Forwarded-For is not believed (not in trusted_proxies): every request
 * it describes is decided as coming from the proxy, so an allow on `source_ip: [10.0.0.0/8]` let
 * every client of a proxy at 10.0.0.5 through, and a deny on the clients' range stopped none of
 * them (found by an adversarial probe). docs/forward-auth.md asks for both lists; this says so.
 */
function forwardAuthFindings(config: Config): Finding[] {
  const trusted = config.server.trusted_proxies
  const covered = (peer: Cidr) => trusted.some((t) => t.family === peer.family && t.prefix <= peer.prefix && addressSet([t]).contains(peer.address))
  const findings: Finding[] = []
  config.server.forward_auth_peers.forEach((peer, i) => {
    if (covered(peer)) return
    findings.push({
      severity: 'warning',
      path: ['server', 'forward_auth_peers', i],
      message: `${peer.text} is not in server.trusted_proxies: the requests it describes are decided for the proxy's address, not the client's (source_ip conditions, limits keyed by ip, the audit's source_ip); list it there as well`,
    })
  })
  return findings
}

function apiKeyFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  config.issuers.forEach((issuer, i) => {
    if (issuer.name === API_KEYS_ISSUER) {
      findings.push({ severity: 'error', path: ['issuers', i, 'name'], message: `the issuer name "${API_KEYS_ISSUER}" is reserved: trust rules name the gateway's API keys with it` })
    }
  })
  const header = config.api_keys?.header.toLowerCase()
  if (header !== undefined && (MANAGED_REQUEST_HEADERS.has(header) || isManagedVariant(header))) {
    const hint = header === 'authorization' ? ': Authorization: Bearer bk_… is accepted anyway' : ''
    findings.push({ severity: 'error', path: ['api_keys', 'header'], message: `the gateway manages ${header} itself; it cannot carry API keys${hint}` })
  }
  return findings
}

function introspectionFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  let first: number | undefined
  config.issuers.forEach((issuer, i) => {
    if (issuer.type !== 'jwt' || !issuer.introspection) return
    const url = new URL(issuer.introspection.url)
    if (url.username || url.password) {
      findings.push({ severity: 'error', path: ['issuers', i, 'introspection', 'url'], message: 'put the client credentials in client_id and client_secret, not in the URL' })
    }
    // An opaque token does not say who issued it: it goes to the one issuer that introspects. Sending
    // it to a second provider as well would hand that provider another's credential.
    if (first !== undefined) {
      findings.push({
        severity: 'error',
        path: ['issuers', i, 'introspection'],
        message: `issuers[${first}] introspects already: an opaque token names no issuer, so one issuer may introspect (a token is never sent to a provider that did not issue it)`,
        atKey: true,
      })
    }
    first ??= i
  })
  return findings
}

/** The credentials a browser sends by itself, whatever page asks, as a refusal names them. */
const AMBIENT_CREDENTIALS = [['session', 'a session cookie'], ['client_cert', 'a client certificate']] as const
/** Methods that change nothing (RFC 9110 §9.2.1), which the forgery check lets through. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

function corsFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  config.routes.forEach((route, i) => {
    const cors = route.cors
    if (!cors) return
    if (cors.credentials && cors.origins.includes('*')) {
      findings.push({
        severity: 'error',
        path: ['routes', i, 'cors', 'credentials'],
        message: 'credentials: true with origins ["*"] would let every web page send its visitors\' cookies here and read the answer: list the origins',
      })
    }
    const anyMethod = route.methods.includes('*')
    cors.methods.forEach((method, j) => {
      if (!anyMethod && !route.methods.includes(method)) {
        findings.push({ severity: 'warning', path: ['routes', i, 'cors', 'methods', j], message: `route "${route.id}" does not take ${method}: a preflight for it gets 405 before CORS applies` })
      }
    })
    // The forgery check (identity/origin.ts) holds whatever cors grants: a page of another origin
    // changes nothing with a session cookie or client certificate, so its granted preflight misleads.
    const ambient = route.public ? undefined : AMBIENT_CREDENTIALS.find(([kind]) => route.accept.includes(kind))?.[1]
    if (cors.credentials && ambient !== undefined) {
      cors.methods.forEach((method, j) => {
        if (SAFE_METHODS.has(method)) return
        findings.push({
          severity: 'warning',
          path: ['routes', i, 'cors', 'methods', j],
          message: `a ${method} from another origin carried by ${ambient} is refused 403 cors_origin_denied (cross-site request forgery protection) whatever cors grants: only the gateway's own pages change state with it; have such pages send a bearer token (accept: [bearer]) or call the gateway from its own origin`,
        })
      })
    }
    if (route.public && cors.headers.some((h) => h.toLowerCase() === 'authorization')) {
      findings.push({ severity: 'warning', path: ['routes', i, 'cors', 'headers'], message: `route "${route.id}" is public: it reads no Authorization header` })
    }
  })
  return findings
}
