// Cookies on the wire (RFC 6265): read from every Cookie header (HTTP/2 sends one per cookie),
// written with HttpOnly, SameSite and Secure, and taken out of the Cookie header sent upstream: a
// sign-in session is the gateway's credential, never the upstream's.

export interface CookieSettings {
  name: string
  secure: boolean
  sameSite: 'lax' | 'strict' | 'none'
}

/** The first value of cookie `name` in the request's Cookie headers, or undefined. */
export function readCookie(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const header = rawHeaders[i] as string
    if (header.length !== 6 || header.toLowerCase() !== 'cookie') continue
    const value = cookieIn(rawHeaders[i + 1] as string, name)
    if (value !== undefined) return value
  }
  return undefined
}

function cookieIn(header: string, name: string): string | undefined {
  let at = 0
  while (at < header.length) {
    const end = header.indexOf(';', at)
    const pair = header.slice(at, end === -1 ? header.length : end)
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
    if (end === -1) break
    at = end + 1
  }
  return undefined
}

/** Is cookie `name` in the request at all (cheap: a substring test first)? */
export function hasCookie(rawHeaders: readonly string[], name: string): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const header = rawHeaders[i] as string
    if (header.length !== 6 || header.toLowerCase() !== 'cookie') continue
    const value = rawHeaders[i + 1] as string
    if (value.includes(name) && cookieIn(value, name) !== undefined) return true
  }
  return false
}

/** A Cookie header's value without the named cookies; '' when nothing else is left. */
export function withoutCookies(header: string, names: ReadonlySet<string>): string {
  const kept: string[] = []
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    const name = (eq === -1 ? pair : pair.slice(0, eq)).trim()
    if (name !== '' && !names.has(name)) kept.push(pair.trim())
  }
  return kept.join('; ')
}

export function setCookie(settings: CookieSettings, value: string, options: { maxAgeSeconds: number; path?: string; sameSite?: 'lax' | 'strict' | 'none' }): string {
  const sameSite = options.sameSite ?? settings.sameSite
  let cookie = `${settings.name}=${value}; Path=${options.path ?? '/'}; Max-Age=${options.maxAgeSeconds}; HttpOnly; SameSite=${sameSite[0]!.toUpperCase()}${sameSite.slice(1)}`
  if (settings.secure) cookie += '; Secure'
  return cookie
}

export function clearCookie(settings: CookieSettings, path = '/'): string {
  return setCookie(settings, '', { maxAgeSeconds: 0, path })
}

/**
 * Set-Cookie values without those naming one of `names` (the gateway's own cookies: the session's).
 * An upstream or a function that sets `bouncer_session` would replace or end the person's gateway
 * session in their browser (session fixation); their other cookies pass.
 */
export function withoutSetCookies(values: string | readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = []
  for (const value of typeof values === 'string' ? [values] : values) {
    if (!names.has(setCookieName(value))) out.push(value)
  }
  return out
}

/**
 * The name a browser will send a Set-Cookie's cookie under. A nameless one (`=bouncer_session=x`:
 * nothing before the first `=`) is stored with an empty name and sent as its value alone
 * (RFC 6265bis §5.6 and §5.7.3, which refuse only `__Host-` and `__Secure-` values), so
 * `bouncer_session=x` reaches the gateway as the cookie of that name: an upstream could set a
 * person's gateway session on a path of its choosing (a probe). Its value's own name counts then.
 */
function setCookieName(value: string): string {
  const semicolon = value.indexOf(';')
  const pair = semicolon === -1 ? value : value.slice(0, semicolon)
  const eq = pair.indexOf('=')
  const name = (eq === -1 ? pair : pair.slice(0, eq)).trim()
  if (name !== '' || eq === -1) return name
  const inner = pair.indexOf('=', eq + 1)
  return inner === -1 ? '' : pair.slice(eq + 1, inner).trim()
}
