// Checks for browser sign-in (SPEC "Callers, added"): the provider it names, its endpoints'
// paths, and cookie settings a browser would refuse or that would weaken the session.
import type { Finding } from './diagnostics.ts'
import type { Config } from './schema.ts'

/** The console's cookie on the admin listener: one name whatever sign_in's is (a `__Host-` name would need TLS on the admin listener too). */
export const CONSOLE_COOKIE = 'bouncer_console'

export function signInFindings(config: Config): Finding[] {
  const findings: Finding[] = consoleSignInFindings(config)
  const signIn = config.sign_in
  if (!signIn) return findings
  const error = (path: (string | number)[], message: string) => findings.push({ severity: 'error', path, message })
  const issuer = config.issuers.find((candidate) => candidate.name === signIn.issuer)
  if (!issuer) error(['sign_in', 'issuer'], `unknown issuer "${signIn.issuer}"`)
  else if (issuer.type !== 'jwt') error(['sign_in', 'issuer'], `issuer "${signIn.issuer}" is of type ${issuer.type}: people sign in at an OpenID provider (an issuer of type jwt)`)
  else if (issuer.introspection && issuer.jwks_uri === undefined) {
    error(['sign_in', 'issuer'], `issuer "${signIn.issuer}" introspects opaque tokens and loads no keys: the ID token is verified with the issuer's keys (give it a jwks_uri)`)
  }
  if (!signIn.scopes.includes('openid')) error(['sign_in', 'scopes'], 'the scopes must include openid: sign-in needs an ID token')
  const beyond = beyondOrigin(signIn.base_url)
  if (beyond !== null) error(['sign_in', 'base_url'], `base_url is the gateway's origin (scheme, host and port), without ${beyond}: the sign-in's endpoints are at the gateway's root, and only the origin made the redirect URI`)
  const paths = [['callback_path', signIn.callback_path], ['sign_in_path', signIn.sign_in_path], ['sign_out_path', signIn.sign_out_path]] as const
  paths.forEach(([key, path], i) => {
    const earlier = paths.slice(0, i).find(([, other]) => other.toLowerCase() === path.toLowerCase())
    if (earlier) error(['sign_in', key], `${key} is the same path as ${earlier[0]} (${path})`)
  })
  const ownPaths = new Set(paths.map(([, path]) => path.toLowerCase()))
  if (ownPaths.has(signIn.after_sign_out_path.toLowerCase())) {
    error(['sign_in', 'after_sign_out_path'], 'after_sign_out_path must be a page of the gateway\'s routes, not one of sign_in\'s own endpoints')
  }
  // Browsers keep cookies by host name, not port: the console's on the admin listener and the
  // gateway's on the same host would replace each other, each refusing the other's session.
  if (config.admin.roles.length + config.admin.read_roles.length > 0 && [CONSOLE_COOKIE, `${CONSOLE_COOKIE}_state`].includes(signIn.cookie.name)) {
    error(['sign_in', 'cookie', 'name'], `${signIn.cookie.name} is the admin console's own cookie (admin.roles signs people in to it): browsers keep cookies by host, not port, so the two sign-ins would replace each other's session; choose another name`)
  }
  signIn.cookie.previous_names.forEach((name, i) => {
    if (name === signIn.cookie.name || name === `${signIn.cookie.name}_state`) error(['sign_in', 'cookie', 'previous_names', i], `${name} is the session cookie's name now (or its sign-in state cookie's): previous_names lists names it had before`)
  })
  const secure = signIn.cookie.secure ?? cookieSecureByDefault(config)
  if (signIn.cookie.same_site === 'none' && !secure) {
    error(['sign_in', 'cookie', 'same_site'], 'same_site: none needs a Secure cookie (browsers refuse it otherwise): serve TLS, give an https base_url, or set cookie.secure: true')
  }
  if (signIn.session.idle > signIn.session.ttl) {
    findings.push({ severity: 'warning', path: ['sign_in', 'session', 'idle'], message: 'idle is longer than ttl: a session ends at ttl anyway' })
  }
  // Browsers match the prefixes in any case (RFC 6265bis), as the runtime does (sign-in.ts), which
  // makes such a cookie Secure whatever else says. Refused where it can never be: secure: false, or
  // plain HTTP with no proxy before it; behind trusted proxies a browser may arrive over https.
  const prefix = /^__(host|secure)-/i.exec(signIn.cookie.name)?.[0]
  if (prefix !== undefined && !secure) {
    const message = `a ${prefix} cookie must be Secure: browsers drop it otherwise (serve TLS, give an https base_url, or set cookie.secure: true)`
    if (signIn.cookie.secure === false || config.server.trusted_proxies.length === 0) error(['sign_in', 'cookie', 'name'], message)
    else findings.push({ severity: 'warning', path: ['sign_in', 'cookie', 'name'], message: `${message}; behind trusted_proxies it works only for browsers that arrive over https` })
  }
  // Then the request's Host (or a trusted proxy's X-Forwarded-Host) names the redirect URI and the
  // origin the CSRF check compares: a client's header, which only the provider's list of redirect
  // URIs holds in. Not said of a loopback listener no proxy stands before (the demo, a laptop).
  if (signIn.base_url === undefined && config.server.hosts.patterns.length === 0 && (!isLoopback(config.server.listen.host) || config.server.trusted_proxies.length > 0)) {
    findings.push({ severity: 'warning', path: ['sign_in'], message: 'neither sign_in.base_url nor server.hosts is set: the request\'s Host header chooses the sign-in\'s redirect URI and the origin state-changing requests must come from; set one of them' })
  }
  return findings
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/**
 * What a base_url holds beyond its origin (a path, a query, credentials), or null. Only the origin
 * was used: `https://corp.example.com/bouncer` made the redirect URI `…/.bouncer/callback` without
 * the path, which the provider refused (redirect_uri mismatch) while the config read as meant (the sessions probe).
 */
function beyondOrigin(baseUrl: string | undefined): string | null {
  if (baseUrl === undefined) return null
  const url = new URL(baseUrl)
  if (url.pathname !== '/') return `a path (${url.pathname})`
  if (url.search !== '' || url.hash !== '') return 'a query or fragment'
  if (url.username !== '' || url.password !== '') return 'credentials'
  return null
}

/** Secure by default where the gateway is reached over TLS: its own listener, or an https base_url. */
export function cookieSecureByDefault(config: Pick<Config, 'server' | 'sign_in'>): boolean {
  return config.server.tls !== undefined || reachedOverHttps(config.sign_in?.base_url)
}

/**
 * Whether a base_url is an https one, its scheme in any case (URLs' schemes are case-insensitive):
 * `HTTPS://…` read as not https, and its cookies went without Secure (the sessions probe).
 */
export function reachedOverHttps(baseUrl: string | undefined): boolean {
  return baseUrl !== undefined && /^https:/i.test(baseUrl)
}

/** admin.roles and admin.read_roles: people sign in to the console through sign_in, as one of these roles. */
function consoleSignInFindings(config: Config): Finding[] {
  const findings: Finding[] = []
  const known = new Set(config.roles.map((role) => role.name))
  for (const key of ['roles', 'read_roles'] as const) {
    const names = config.admin[key]
    if (names.length > 0 && !config.sign_in) {
      findings.push({ severity: 'error', path: ['admin', key], message: `admin.${key} signs people in to the console through sign_in: configure sign_in (or use admin.token / admin.read_token)` })
    }
    names.forEach((name, i) => {
      if (!known.has(name)) findings.push({ severity: 'error', path: ['admin', key, i], message: `unknown role "${name}"` })
    })
  }
  const beyond = beyondOrigin(config.admin.base_url)
  if (beyond !== null && config.sign_in) findings.push({ severity: 'error', path: ['admin', 'base_url'], message: `admin base_url is the admin listener's origin (scheme, host and port), without ${beyond}: the console's sign-in endpoints are at its root, and only the origin made the redirect URI` })
  for (const name of config.admin.read_roles) {
    if (config.admin.roles.includes(name)) findings.push({ severity: 'warning', path: ['admin', 'read_roles'], message: `role "${name}" is in roles too: it has admin access` })
  }
  return findings
}
