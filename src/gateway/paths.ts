// Request-target canonicalisation and the `bad_path` rules (SPEC "On the wire").
//
// The router matches decoded segments; the upstream receives the canonical path built from the
// same segments, so what was authorized is exactly what is forwarded. Anything that two parsers
// could read differently (an encoded slash, a dot segment, a backslash, a control character) is
// refused rather than guessed at.
import { GatewayError } from '../errors/index.ts'

export interface RequestTarget {
  /** Canonical, percent-encoded path: forwarded byte-for-byte when the route has no rewrite. */
  path: string
  /** Decoded segments after the leading `/` (`/` is ['']). */
  segments: string[]
  /** The raw query string without `?`, or '' (forwarded unchanged). */
  query: string
}

function badPath(detail: string): GatewayError {
  return new GatewayError('bad_path', { detail })
}

// Characters that may stand unencoded in a canonical segment: RFC 3986 pchar minus `%`.
const SAFE = new Uint8Array(128)
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@") SAFE[c.charCodeAt(0)] = 1

const PERCENT = 0x25
const BACKSLASH = 0x5c

/**
 * Splits a request target (origin-form, or absolute-form naming this host) into a canonical
 * path, decoded segments and the raw query. Throws `bad_path` for anything ambiguous.
 */
export function parseTarget(url: string, host: string | undefined): RequestTarget {
  let target = url
  if (target.charCodeAt(0) !== 0x2f /* / */) target = originFormOf(target, host)

  const q = target.indexOf('?')
  const rawPath = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? '' : target.slice(q + 1)
  if (rawPath.includes('#')) throw badPath('a request target cannot hold a fragment (#)')

  const parts = rawPath.split('/')
  const segments: string[] = []
  let changed = false
  // parts[0] is the empty string before the leading '/'.
  for (let i = 1; i < parts.length; i++) {
    const raw = parts[i] as string
    if (raw === '' && i < parts.length - 1) {
      changed = true // `//` collapses to `/`, as nginx's merge_slashes does
      continue
    }
    const { value, clean } = decodeSegment(raw)
    if (isDotSegment(value)) throw badPath('dot segments ("." and "..", raw or encoded) are not allowed in a path')
    if (!clean) changed = true
    segments.push(value)
  }
  return { path: changed ? '/' + segments.map(encodeSegment).join('/') : rawPath, segments, query }
}

/** Absolute-form is accepted only for the host the request is addressed to (RFC 9112 §3.2.2). */
function originFormOf(target: string, host: string | undefined): string {
  const match = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target)
  if (!match) throw badPath('the request target must be a path starting with "/"')
  const authority = (match[1] as string).toLowerCase()
  if (host === undefined || authority !== host.toLowerCase()) {
    throw badPath('an absolute-form request target for another host is not forwarded')
  }
  const rest = match[2] as string
  return rest.startsWith('/') ? rest : `/${rest}`
}

function decodeSegment(raw: string): { value: string; clean: boolean } {
  let hasPercent = false
  let clean = true
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) throw badPath('control characters are not allowed in a path')
    if (c === BACKSLASH) throw badPath('a backslash is not allowed in a path')
    if (c === PERCENT) hasPercent = true
    else if (c >= 128 || SAFE[c] !== 1) clean = false
  }
  if (!hasPercent) return { value: raw, clean }
  let value: string
  try {
    value = decodeURIComponent(raw)
  } catch {
    throw badPath('the path holds invalid percent-encoding')
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0x2f || c === BACKSLASH) throw badPath('an encoded slash or backslash (%2F, %5C) is not allowed in a path')
    if (c < 0x20 || c === 0x7f) throw badPath('encoded control characters are not allowed in a path')
  }
  // Re-encoding normalises the escapes (%7e → ~, %3a → :): clean only if that changes nothing.
  return { value, clean: encodeSegment(value) === raw }
}

/** `.`, `..`, and the `..;` forms that Java servlet containers read as `..` (path parameter confusion). */
function isDotSegment(value: string): boolean {
  if (value.charCodeAt(0) !== 0x2e) return false
  const semi = value.indexOf(';')
  const name = semi === -1 ? value : value.slice(0, semi)
  return name === '.' || name === '..'
}

/** Percent-encodes everything but pchar (uppercase hex, UTF-8). */
export function encodeSegment(value: string): string {
  let plain = true
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c >= 128 || SAFE[c] !== 1) {
      plain = false
      break
    }
  }
  if (plain) return value
  let out = ''
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte < 128 && SAFE[byte] === 1 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}
