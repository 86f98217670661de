// The `_method` query parameter: Laravel and Symfony (httpMethodParameterOverride, on in Laravel),
// Express's method-override (`methodOverride('_method')`), Spring's HiddenHttpMethodFilter (a
// servlet parameter: the query's too) and Jersey's HttpMethodOverrideFilter run a POST that carries
// one as the method it names, with the query forwarded as sent. The gateway routed and authorized it as a POST,
// so a caller allowed POST and denied DELETE had an upstream run DELETE (an adversarial probe).
// Only POST is overridden by those frameworks, so only a POST's query is read.
import { GatewayError } from '../errors/index.ts'
import { isMethodToken } from './described-request.ts'
import type { RequestHeaders } from './request-headers.ts'

/** No `_method` parameters: what every request but a POST that names one has (one array, shared). */
export const NO_METHOD_OVERRIDES: readonly string[] = Object.freeze([])
const PARAMETER = '_method'

/**
 * The methods a POST's `_method` parameters name (upper-cased, as the frameworks read them), other
 * than POST itself; none for any other method. A value that is no HTTP method is refused (400
 * bad_request) rather than guessed at.
 */
export function methodOverrides(method: string, query: string): readonly string[] {
  if (method !== 'POST' || query === '') return NO_METHOD_OVERRIDES
  return pairOverrides(method, query, null) ?? NO_METHOD_OVERRIDES
}

/** The methods the `_method` pairs of a query or an urlencoded form name, added to `found`. */
function pairOverrides(method: string, text: string, found: string[] | null): string[] | null {
  for (const pair of text.matchAll(CANDIDATE_PAIRS)) {
    const name = asPhpReadsIt(decodeLeniently(pair[1] as string))
    if (name !== PARAMETER && !name.startsWith(`${PARAMETER}[`)) continue
    found = named(method, decodeLeniently(pair[2] ?? ''), found)
  }
  return found
}

/** A `_method` value read as the frameworks read it (trimmed, upper-cased), added to `found` unless it is the request's own. */
function named(method: string, text: string, found: string[] | null): string[] | null {
  const value = text.trim().toUpperCase()
  if (value === '' || value === method) return found
  if (!isMethodToken(value)) {
    throw new GatewayError('bad_request', { detail: 'The _method parameter of this POST is not an HTTP method: frameworks that obey it would run the request as another method.' })
  }
  if (!(found ??= []).includes(value)) found.push(value)
  return found
}

/**
 * The pairs (split at `&`, and `;`, which PHP's arg_separator.input and older Pythons also split at)
 * whose name could read as `_method`: one with an escape, or that spells "method" in some case (no
 * other reading makes those letters). The rest of a large form is passed over by the regex engine:
 * a 3 MB form of 60,000 fields is read in 4 ms, not the 29 ms of splitting it.
 */
const CANDIDATE_PAIRS = /(?:^|[&;])([^&;=%]*(?:%|method)[^&;=]*)(?:=([^&;]*))?/gi

/**
 * A parameter name as PHP fills $_GET from it (which Laravel and Symfony read): cut at a NUL (a C
 * string), leading spaces dropped, then a space, `.` or an unclosed `[` read as `_`, so `.method`,
 * `+_method` and `_method%00x` are `_method`. Lower-cased too: no reading of the name is left that
 * would escape the check.
 */
function asPhpReadsIt(name: string): string {
  const nul = name.indexOf('\0')
  const trimmed = (nul === -1 ? name : name.slice(0, nul)).replace(/^ +/, '').toLowerCase()
  const bracket = trimmed.indexOf('[')
  const head = bracket === -1 || trimmed.includes(']', bracket) ? trimmed : trimmed.slice(0, bracket + 1).replace('[', '_') + trimmed.slice(bracket + 1)
  return head.replace(/^[^[]*/, (start) => start.replace(/[ .]/g, '_'))
}

/** `+` as a space and every valid escape decoded, as form decoders do; a stray `%` kept. */
function decodeLeniently(text: string): string {
  const spaced = text.includes('+') ? text.replaceAll('+', ' ') : text
  if (!spaced.includes('%')) return spaced
  try {
    return decodeURIComponent(spaced)
  } catch {
    return spaced.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
  }
}

/** A POST body whose `_method` fields the frameworks read, and how it is read. */
export type FormBody = { readonly kind: 'urlencoded' } | { readonly kind: 'multipart'; readonly boundaries: readonly string[] }

const URLENCODED: FormBody = Object.freeze({ kind: 'urlencoded' })

/**
 * The form a POST's body is, for the `_method` fields in it: Rails (Rack::MethodOverride), Laravel
 * and Symfony (PHP's $_POST), Express's method-override with a body getter read them from an
 * urlencoded body and from a multipart one (Rack parses multipart/mixed and /related too: any
 * multipart is read); an empty Content-Type is a form to Rack (Request#form_data?). So is a POST
 * with no Content-Type at all, but that is not read: untyped uploads (fetch with a Buffer) would
 * all be held whole before forwarding (README "Path rules" rule 7 says so). Null for any other
 * request, and for a POST with no body: those pay nothing.
 */
export function formBodyOf(method: string, headers: Pick<RequestHeaders, 'contentType' | 'contentLength' | 'chunked'>): FormBody | null {
  if (method !== 'POST' || !(headers.chunked || (headers.contentLength !== undefined && headers.contentLength > 0))) return null
  const type = headers.contentType
  if (type === undefined) return null
  // Tests that allocate nothing: a JSON POST pays three failed matches, no copy of its type.
  if (URLENCODED_TYPE.test(type) || EMPTY_TYPE.test(type)) return URLENCODED
  if (MULTIPART_TYPE.test(type)) return { kind: 'multipart', boundaries: boundariesOf(type) }
  return null
}

// The media type as PHP and Rack read it: up to the first `;`, `,` or white space, in any case.
const URLENCODED_TYPE = /^\s*application\/x-www-form-urlencoded(?:[;,\s]|$)/i
const MULTIPART_TYPE = /^\s*multipart\//i
const EMPTY_TYPE = /^\s*(?:[;,]|$)/

/**
 * Every boundary a framework may read in a multipart Content-Type: PHP and busboy take the first
 * `boundary=` parameter, Rack's pattern (`multipart/.*boundary="?([^";,]+)"?`) the last one,
 * `xboundary=` too, with any spaces in it. All of them are scanned.
 */
function boundariesOf(type: string): string[] {
  const found: string[] = []
  for (const match of type.matchAll(/boundary\s*=\s*(?:"([^"]*)"?|([^;,]*))/gi)) {
    const quoted = match[1]
    const candidates = quoted !== undefined ? [quoted] : [(match[2] as string).trimEnd(), (match[2] as string).split(/\s/)[0] as string]
    for (const candidate of candidates) if (candidate !== '' && !found.includes(candidate)) found.push(candidate)
  }
  return found
}

/**
 * The methods a form POST's `_method` fields name, other than POST; none when there are none. Read
 * as the frameworks read them, and wider where they differ (a superset refuses more, never less):
 * an urlencoded body as the query is (PHP's names, lenient decoding); a multipart body's parts found
 * by every boundary, at any `--boundary` (not only at a line's start, as PHP's `\n--`), whatever
 * follows the closing one, a part's name from every `name=` (or RFC 5987 `name*=`) parameter of its
 * Content-Disposition headers, read as PHP reads names; file parts too.
 */
export function formMethodOverrides(method: string, form: FormBody, body: Buffer): readonly string[] {
  if (body.length === 0) return NO_METHOD_OVERRIDES
  if (form.kind === 'urlencoded') return pairOverrides(method, body.toString('latin1'), null) ?? NO_METHOD_OVERRIDES
  let found: string[] | null = null
  for (const boundary of form.boundaries) found = multipartOverrides(method, body, Buffer.from(`--${boundary}`, 'latin1'), found)
  return found ?? NO_METHOD_OVERRIDES
}

function multipartOverrides(method: string, body: Buffer, delimiter: Buffer, found: string[] | null): string[] | null {
  let at = body.indexOf(delimiter)
  while (at !== -1) {
    const next = body.indexOf(delimiter, at + delimiter.length)
    found = partOverrides(method, body.subarray(at + delimiter.length, next === -1 ? body.length : next), found)
    at = next
  }
  return found
}

/** A blank line: where a part's headers end (PHP takes a bare `\n` for a line end too). */
const BLANK_LINE = /\n\r?\n/

/** One part, from just after its delimiter: the rest of the delimiter's line, its headers, a blank line, its value. */
function partOverrides(method: string, part: Buffer, found: string[] | null): string[] | null {
  const lineEnd = part.indexOf(0x0a)
  if (lineEnd === -1) return found
  // Headers are short: where no blank line comes in the first 64 KiB, none is looked for further.
  const head = part.subarray(lineEnd, Math.min(part.length, lineEnd + 65_536)).toString('latin1')
  const blank = BLANK_LINE.exec(head)
  if (blank === null) return found
  if (!partNames(head.slice(1, blank.index)).some((name) => name === PARAMETER || name.startsWith(`${PARAMETER}[`))) return found
  let value = part.subarray(lineEnd + blank.index + blank[0].length)
  // The line end before the next delimiter belongs to it.
  if (value.at(-1) === 0x0a) value = value.subarray(0, value.at(-2) === 0x0d ? -2 : -1)
  return named(method, value.toString('latin1'), found)
}

/** Every name (`name=` after anything but a letter, digit or `_`, as Rack's `\bname=`, or `name*=`) its Content-Disposition headers give a part, read as PHP reads names. */
function partNames(headers: string): string[] {
  const names: string[] = []
  for (const line of headers.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon === -1 || line.slice(0, colon).trim().toLowerCase() !== 'content-disposition') continue
    for (const match of line.slice(colon + 1).matchAll(/(?<![A-Za-z0-9_])name(\*?)\s*=\s*(?:"((?:\\.|[^"\\])*)"?|([^;]*))/gi)) {
      const raw = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] as string).trim()
      // RFC 5987 (busboy reads it): charset'language'percent-encoded.
      const text = match[1] === '*' ? decodeLeniently(raw.slice(raw.indexOf("'", raw.indexOf("'") + 1) + 1)) : raw
      names.push(asPhpReadsIt(text))
    }
  }
  return names
}
