// Request-target canonicalisation and the `bad_path` rules (SPEC "On the wire", README "Path rules").
//
// The router matches decoded segments; the upstream receives the canonical path built from the
// same raw segments, so what was authorized is exactly what is forwarded. Anything that two parsers
// could read differently (an encoded slash, a dot segment, a backslash, a control character, a
// `;` parameter that servlet containers strip, a trailing dot or space that Windows trims, an
// escape that a second decoding turns into `.` or `/`) is refused rather than guessed at.
import { GatewayError } from '../errors/index.ts'

export interface RequestTarget {
  /**
   * Canonical path, forwarded when the route has no rewrite: escapes of unreserved characters
   * decoded, every other escape kept (upper-case hex), anything outside pchar encoded, `//` merged.
   */
  path: string
  /**
   * `path.split('/')`: '' then the canonical segments, so `parts[i + 1]` is the forwarded form of
   * `segments[i]` (the router captures params and rest from it). Unchanged paths reuse the split.
   */
  parts: string[]
  /** Decoded segments after the leading `/`, each without its `;` parameters: what routes match (`/` is ['']). */
  segments: string[]
  /** The raw query string without `?`, or '' (forwarded unchanged). */
  query: string
  /** Some segment holds a `;` (raw or decoded): only a route with `path_params: true` takes it. */
  pathParams: boolean
}

/**
 * What a request's record, log lines and span say of its target until it is parsed (a refused one
 * keeps it): the path as sent, without the query — it may carry a token (`?access_token=…`), and
 * a bad_path refusal wrote it into the audit log for good — nor an absolute-form target's scheme
 * and authority (`user:password@`). The query and fragment are cut first: a `/` or a `//` inside
 * them (a base64 signature, a redirect URL) is no path. An absolute-form target's authority ends
 * at its first `/` (RFC 3986 §3.2, as parseTarget reads it). The target itself, with nothing to
 * cut (no allocation).
 */
export function targetPath(target: string): string {
  let end = target.indexOf('?')
  if (end === -1) end = target.length
  const fragment = target.indexOf('#')
  if (fragment !== -1 && fragment < end) end = fragment
  let start = 0
  if (target.charCodeAt(0) !== 0x2f) {
    const authority = target.indexOf('//')
    if (authority !== -1 && authority < end) {
      const slash = target.indexOf('/', authority + 2)
      start = slash === -1 || slash > end ? end : slash
    }
  }
  return start === 0 && end === target.length ? target : target.slice(start, end) || '/'
}

function badPath(detail: string): GatewayError {
  return new GatewayError('bad_path', { detail })
}

function table(chars: string): Uint8Array {
  const out = new Uint8Array(128)
  for (const c of chars) out[c.charCodeAt(0)] = 1
  return out
}

const UNRESERVED_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~'
// Characters that may stand unencoded in a canonical segment: RFC 3986 pchar minus `%`.
const SAFE = table(`${UNRESERVED_CHARS}!$&'()*+,;=:@`)
// RFC 3986 §6.2.2.2: only escapes of unreserved characters may be decoded without changing what
// the URI means; `%3B` decoded to `;` would become a path parameter for a servlet container.
const UNRESERVED = table(UNRESERVED_CHARS)
// What an upstream that decodes once more must not find: `.` `/` `\` (traversal), `;` (a path
// parameter), `?` `#` (the end of the path), control characters (header injection, truncation).
const NESTED_REFUSED = table('./\\;?#')
for (let c = 0; c < 0x20; c++) NESTED_REFUSED[c] = 1
NESTED_REFUSED[0x7f] = 1
/** Deeper than this the gateway stops decoding and refuses: no client encodes a path nine times. */
const MAX_NESTED_DECODES = 8

const PERCENT = 0x25
const BACKSLASH = 0x5c
const SEMICOLON = 0x3b

// What parseTarget's raw scan found in a segment.
const HAS_ESCAPE = 1
const HAS_SEMICOLON = 2
/** The canonical form differs: an escape to decode or upper-case, a character to encode. */
const NOT_CANONICAL = 4

/**
 * Splits a request target (origin-form, or absolute-form naming this host) into a canonical
 * path, decoded segments and the raw query. Throws `bad_path` for anything ambiguous.
 * Per request: linear in the target. A path already in canonical form (the usual case, escapes
 * included) allocates only its split and the segment list and is forwarded as the string received;
 * the path-form rules kept its cost where it was (≈1 µs for six segments, Node 24, 2026-12).
 */
export function parseTarget(url: string, host: string | undefined): RequestTarget {
  let target = url
  if (target.charCodeAt(0) !== 0x2f /* / */) target = originFormOf(target, host)

  const q = target.indexOf('?')
  const rawPath = q === -1 ? target : target.slice(0, q)
  const query = q === -1 ? '' : target.slice(q + 1)
  // RFC 9112 §3.2: no request-target holds a fragment. One after the query was forwarded: an upstream
  // that parses the URL drops it, and reads another query than the gateway judged (front-door probe).
  if (target.includes('#')) throw badPath('a request target cannot hold a fragment (#)')

  const parts = rawPath.split('/')
  const segments: string[] = []
  let changed = false
  let pathParams = false
  // parts[0] is the empty string before the leading '/'.
  for (let i = 1; i < parts.length; i++) {
    const raw = parts[i] as string
    const last = i === parts.length - 1
    if (raw === '' && !last) {
      changed = true // `//` collapses to `/`, as nginx's merge_slashes does
      continue
    }
    const flags = scanRaw(raw)
    if ((flags & NOT_CANONICAL) !== 0) changed = true
    const value = (flags & HAS_ESCAPE) === 0 ? raw : decodeEscapes(raw)
    const semi = (flags & (HAS_ESCAPE | HAS_SEMICOLON)) === 0 ? -1 : value.indexOf(';')
    const name = semi === -1 ? value : value.slice(0, semi)
    if (name === '.' || name === '..') throw badPath('dot segments ("." and "..", raw or encoded, also "..;") are not allowed in a path')
    // Only an escape (or, from explain, a raw character) can bring a non-ASCII one: plain segments skip the test.
    if ((flags & (HAS_ESCAPE | NOT_CANONICAL)) !== 0 && NON_ASCII.test(value)) refuseCompatibilityForms(value)
    if (endsInDotOrSpace(value) || endsInDotOrSpace(name)) {
      throw badPath('a path segment cannot end in "." or whitespace (raw or encoded): Windows servers trim them')
    }
    if (semi !== -1) {
      pathParams = true
      // Tomcat reads `/a/;x/b` as `/a//b`, then `/a/b`: a segment of parameters alone is refused.
      if (name === '' && !last) throw badPath('a path segment cannot hold only ";" parameters')
    }
    segments.push(name)
  }
  if (!changed) return { path: rawPath, parts, segments, query, pathParams }
  const canonical = canonicalParts(parts)
  return { path: canonical.join('/'), parts: canonical, segments, query, pathParams }
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

/** Refuses raw control characters and backslashes; says what else the segment holds (the flags above). */
function scanRaw(raw: string): number {
  let flags = 0
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c === PERCENT) {
      flags |= HAS_ESCAPE
      if (!isCanonicalEscape(raw, i)) flags |= NOT_CANONICAL
    } else if (c < 0x20 || c === 0x7f) {
      throw badPath('control characters are not allowed in a path')
    } else if (c === BACKSLASH) {
      throw badPath('a backslash is not allowed in a path')
    } else if (c === SEMICOLON) {
      flags |= HAS_SEMICOLON
    } else if (c >= 0xd800 && c <= 0xdfff) {
      // Only explain's --path can hold one (HTTP carries bytes): a lone surrogate has no UTF-8 form,
      // so the forwarded path would hold U+FFFD, another segment than the one matched (found by fuzzing).
      if (c > 0xdbff || !isLowSurrogate(raw.charCodeAt(i + 1))) throw badPath('a path cannot hold an unpaired UTF-16 surrogate')
      i++
      flags |= NOT_CANONICAL
    } else if (c >= 128 || SAFE[c] !== 1) {
      flags |= NOT_CANONICAL
    }
  }
  return flags
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff
}

/** `%3B` is canonical; `%3b` (lower-case hex) and `%7E` (an unreserved character) are not. */
function isCanonicalEscape(raw: string, at: number): boolean {
  const byte = hexByte(raw, at + 1)
  if (byte === -1 || (byte < 128 && UNRESERVED[byte] === 1)) return false
  const high = raw.charCodeAt(at + 1)
  const low = raw.charCodeAt(at + 2)
  return !(high >= 0x61 && high <= 0x66) && !(low >= 0x61 && low <= 0x66)
}

function decodeEscapes(raw: string): string {
  let value: string
  try {
    value = decodeURIComponent(raw)
  } catch {
    throw badPath('the path holds invalid percent-encoding')
  }
  let nested = false
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0x2f || c === BACKSLASH) throw badPath('an encoded slash or backslash (%2F, %5C) is not allowed in a path')
    if (c < 0x20 || c === 0x7f) throw badPath('encoded control characters are not allowed in a path')
    if (c === PERCENT) nested = true
  }
  if (nested) refuseNestedEscapes(value)
  return value
}

// eslint-disable-next-line no-control-regex -- the range above ASCII is the point
const NON_ASCII = /[^\x00-\x7f]/
// What NFKC must not bring into a segment: a separator, a path parameter, the query or fragment, a control character.
// eslint-disable-next-line no-control-regex -- control characters are the point
const COMPATIBILITY_REFUSED = /[/\\;?#\x00-\x1f\x7f]/

/**
 * Fullwidth and other compatibility characters (`．．` U+FF0E, `／` U+FF0F, `＼` U+FF3C) are `..`, `/`
 * and `\` to an upstream that normalizes to NFKC before it routes (Ruby's Addressable
 * URI#normalize, apps calling unicodedata.normalize or String#normalize): `/reports/x/．．/admin`
 * was forwarded as a `/reports/*` request that such an upstream runs as `/reports/admin` (an
 * adversarial probe). A segment whose NFKC form is a dot segment, ends in `.` or whitespace, or
 * holds what a decoded segment may not, is refused, as its plain form would be; escapes it brings
 * (`％２ｅ`) are read as nested ones. Only segments with non-ASCII characters pay for it.
 */
function refuseCompatibilityForms(value: string): void {
  const compatible = value.normalize('NFKC')
  if (compatible === value) return
  const semi = compatible.indexOf(';')
  const name = semi === -1 ? compatible : compatible.slice(0, semi)
  if (name === '.' || name === '..' || endsInDotOrSpace(name) || endsInDotOrSpace(compatible) || introducesRefused(value, compatible)) {
    throw badPath('a path segment holds characters that Unicode compatibility normalization (NFKC) turns into "." or "..", "/", "\\", ";", "?", "#", a control character or a trailing dot or space')
  }
  if (compatible.includes('%')) refuseNestedEscapes(compatible)
}

/** Whether NFKC brought in a character COMPATIBILITY_REFUSED names (the segment may hold `;` parameters or an escaped `?` already). */
function introducesRefused(value: string, compatible: string): boolean {
  return refusedCount(compatible) > refusedCount(value)
}

function refusedCount(text: string): number {
  let count = 0
  for (const c of text) if (COMPATIBILITY_REFUSED.test(c)) count++
  return count
}

/**
 * `%252e` decodes to `%2e`: harmless here, but `.` for an upstream that decodes again (a proxy in
 * front of an app, a framework that decodes twice). Decodes the already-decoded segment again,
 * leniently as such upstreams do, until nothing changes, refusing what NESTED_REFUSED names and a
 * trailing dot or whitespace at any depth. Only segments that still hold a `%` get here.
 */
function refuseNestedEscapes(value: string): void {
  let text = value
  for (let depth = 1; ; depth++) {
    let out = ''
    let decoded = false
    for (let i = 0; i < text.length; i++) {
      const byte = text.charCodeAt(i) === PERCENT ? hexByte(text, i + 1) : -1
      if (byte === -1) {
        out += text[i]
        continue
      }
      if (byte < 128 && NESTED_REFUSED[byte] === 1) {
        throw badPath('the path holds a multiply-encoded ".", "/", "\\", ";", "?", "#" or control character (such as %252e)')
      }
      out += byte < 128 ? String.fromCharCode(byte) : '\u0080' // any non-ASCII byte: it cannot start an escape
      decoded = true
      i += 2
    }
    if (!decoded) return
    if (endsInDotOrSpace(out)) throw badPath('a path segment cannot end in a multiply-encoded "." or whitespace')
    if (depth === MAX_NESTED_DECODES) throw badPath(`the path's percent-encoding is nested more than ${MAX_NESTED_DECODES} deep`)
    text = out
  }
}

function hexByte(text: string, at: number): number {
  if (at + 1 >= text.length) return -1
  const high = hexDigit(text.charCodeAt(at))
  const low = hexDigit(text.charCodeAt(at + 1))
  return high === -1 || low === -1 ? -1 : high * 16 + low
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const lower = c | 0x20
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1
}

/**
 * IIS and Windows file APIs trim a trailing `.` or space, so `admin.` and `admin%20` name `admin`
 * there. Whitespace as JavaScript's trim() knows it (Unicode White_Space and BOM): .NET trims the same.
 */
function endsInDotOrSpace(value: string): boolean {
  if (value.length === 0) return false
  const c = value.charCodeAt(value.length - 1)
  return c === 0x2e || c === 0x20 || c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
}

/** Cold path: only for targets whose raw form is not already canonical. */
function canonicalParts(parts: readonly string[]): string[] {
  const out = ['']
  for (let i = 1; i < parts.length; i++) {
    const raw = parts[i] as string
    if (raw === '' && i < parts.length - 1) continue
    out.push(canonicalSegment(raw))
  }
  return out
}

/**
 * The forwarded form of a raw (already validated) segment: escapes of unreserved characters are
 * decoded (`%7e` → `~`), every other escape stays, in upper-case hex (`%3b` → `%3B`, never `;`);
 * characters outside pchar are encoded as UTF-8. Also gives `upstream_path` literals their form.
 */
export function canonicalSegment(raw: string): string {
  let out = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    const byte = c === PERCENT ? hexByte(raw, i + 1) : -1
    if (byte !== -1) {
      out += byte < 128 && UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : `%${hex(byte)}`
      i += 2
    } else if (c < 128 && SAFE[c] === 1) {
      out += raw[i]
    } else {
      const codePoint = raw.codePointAt(i) as number
      if (codePoint > 0xffff) i++
      for (const utf8 of Buffer.from(String.fromCodePoint(codePoint), 'utf8')) out += `%${hex(utf8)}`
    }
  }
  return out
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0')
}

/**
 * Could a request line carry `text` as its target: origin form (`/…`), absolute form (`http(s)://…`)
 * or `*`? What the simulator (explain) takes as a request's path; anything else is a typo of one.
 */
export function isRequestTargetForm(text: string): boolean {
  return text.startsWith('/') || text === '*' || /^https?:\/\//i.test(text)
}
