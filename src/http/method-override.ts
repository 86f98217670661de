// The `_method` query parameter: Laravel and Symfony (httpMethodParameterOverride, on in Laravel),
// Express's method-override (`methodOverride('_method')`), Spring's HiddenHttpMethodFilter (a
// servlet parameter: the query's too) and Jersey's HttpMethodOverrideFilter run a POST that carries
// one as the method it names, with the query forwarded as sent. The gateway routed and authorized it as a POST,
// so a caller allowed POST and denied DELETE had an upstream run DELETE (an adversarial probe).
// Only POST is overridden by those frameworks, so only a POST's query is read.
import { GatewayError } from '../errors/index.ts'
import { isMethodToken } from './described-request.ts'
import { foldHeaderName } from './managed-headers.ts'
import { hasBody, type RequestHeaders } from './request-headers.ts'

/** No `_method` parameters: what every request but a POST that names one has (one array, shared). */
export const NO_METHOD_OVERRIDES: readonly string[] = Object.freeze([])
export const PARAMETER = '_method'

/**
 * The methods a POST's `_method` parameters name (upper-cased, as the frameworks read them), other
 * than POST itself; none for any other method. A value that is no HTTP method is refused (400
 * bad_request) rather than guessed at.
 */
export function methodOverrides(method: string, query: string): readonly string[] {
  if (method !== 'POST' || query === '') return NO_METHOD_OVERRIDES
  return pairOverrides(method, query, null) ?? NO_METHOD_OVERRIDES
}

/**
 * Headers that run a POST as the method they name: X-HTTP-Method-Override (Symfony and Laravel on
 * every POST, Rails' Rack::MethodOverride, ASP.NET Core, Go's gorilla/handlers, Express's
 * method-override), X-HTTP-Method (OData) and X-Method-Override (Google's APIs, method-override's
 * option). The gateway removes them where it forwards (managed-headers.ts); behind forward-auth the
 * proxy forwards them, so a described POST is decided as what they name too.
 */
const OVERRIDE_HEADERS: ReadonlySet<string> = new Set(['x-http-method-override', 'x-http-method', 'x-method-override'])

/**
 * The methods a POST's override headers name (each item of a comma-separated value, upper-cased, as
 * the frameworks read the first: every one is decided), other than POST; none for any other method.
 * Look-alikes (`X_HTTP_Method_Override`) count: PHP and CGI servers read them as the same variable.
 */
export function headerMethodOverrides(method: string, rawHeaders: readonly string[]): readonly string[] {
  if (method !== 'POST') return NO_METHOD_OVERRIDES
  let found: string[] | null = null
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (!OVERRIDE_HEADERS.has(foldHeaderName(name.toLowerCase()))) continue
    for (const item of (rawHeaders[i + 1] as string).split(',')) {
      const value = item.trim().toUpperCase()
      if (value === '' || value === method) continue
      if (!isMethodToken(value)) {
        throw new GatewayError('bad_request', { detail: `The ${name} header of this POST is not an HTTP method: frameworks that obey it would run the request as another method.` })
      }
      if (!(found ??= []).includes(value)) found.push(value)
    }
  }
  return found ?? NO_METHOD_OVERRIDES
}

/** The methods the `_method` pairs of a query or an urlencoded form name, added to `found`. */
function pairOverrides(method: string, text: string, found: string[] | null): string[] | null {
  let fields = 0
  for (const pair of text.matchAll(CANDIDATE_PAIRS)) {
    if (++fields > MAX_METHOD_FIELDS) throw tooManyFields()
    const name = asPhpReadsIt(decodeLeniently(pair[1] as string))
    if (name !== PARAMETER && !name.startsWith(`${PARAMETER}[`)) continue
    found = named(method, decodeLeniently(pair[2] ?? ''), found)
  }
  return found
}

/** A `_method` value read as the frameworks read it (trimmed, upper-cased), added to `found` unless it is the request's own. */
export function named(method: string, text: string, found: string[] | null): string[] | null {
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
 * whose name could read as `_method`: leading spaces, then `_` or what PHP reads as one (`.`, a
 * space, an unclosed `[`), then "method" in any case, each character as itself or an escape (no
 * other reading makes them). The rest of a large form is passed over by the regex engine: a 3 MB
 * form of 60,000 fields is read in a few ms, not the 72 ms of splitting it and reading every name.
 */
const CANDIDATE_PAIRS = /(?:^|[&;])([ +]*(?:%20[ +]*)*(?:[_. +[]|%5f|%2e|%20|%5b)(?:m|%[46]d)(?:e|%[46]5)(?:t|%[57]4)(?:h|%[46]8)(?:o|%[46]f)(?:d|%[46]4)[^&;=]*)(?:=([^&;]*))?/gi

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
  if (!postWithBody(method, headers)) return null
  const type = headers.contentType
  if (type === undefined) return null
  // Tests that allocate nothing: a JSON POST pays three failed matches here, no copy of its type.
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
 * an urlencoded body as the query is (PHP's names, lenient decoding); in a multipart body, every
 * Content-Disposition header of a part's head (after a `--boundary`, of every boundary, anywhere on
 * its line, and before the head's blank line), a name from each of its `name=` or RFC 5987 `name*=`
 * parameters, read as PHP reads names; file parts too. The body's length bounds the work: one pass
 * of a regular expression over it, then a bounded look at each `_method` part (at most
 * MAX_METHOD_FIELDS of them: more are refused, 400).
 */
export function formMethodOverrides(method: string, form: FormBody, body: Buffer): readonly string[] {
  if (body.length === 0) return NO_METHOD_OVERRIDES
  if (form.kind === 'urlencoded') return pairOverrides(method, body.toString('latin1'), null) ?? NO_METHOD_OVERRIDES
  if (form.boundaries.length === 0) return NO_METHOD_OVERRIDES // no framework can find a part without one
  if (form.boundaries.length > MAX_BOUNDARIES) throw badForm(`its Content-Type names ${form.boundaries.length} boundaries`)
  const text = body.toString('latin1')
  const delimiters = form.boundaries.map((boundary) => `--${boundary}`)
  let found: string[] | null = null
  let fields = 0
  // Where the next "method" is, at or after the last place looked from (Infinity: none): each byte looked at once.
  let methodAt = -1
  DISPOSITION.lastIndex = 0
  for (let header = DISPOSITION.exec(text); header !== null; header = DISPOSITION.exec(text)) {
    const lineEnd = header.index + header[0].length
    const from = lineEnd - (header[1] as string).length
    const end = headerEnd(text, lineEnd)
    DISPOSITION.lastIndex = end // a header's value is passed over whole, as one match of it was
    if (methodAt < from) {
      METHOD_LETTERS.lastIndex = from
      methodAt = METHOD_LETTERS.exec(text)?.index ?? Infinity
    }
    if (methodAt >= end) continue // none in this header (the letters hold no line end: one found before `end` ends there too)
    const disposition = text.slice(from, end)
    const start = lineStart(text, header.index)
    if (start === -1) continue
    // Longer than any framework reads as a part's head: refused when it is one, not read by patterns whose stack it would outgrow.
    if (disposition.length > PART_WINDOW) {
      if (inPartHead(text, start, delimiters)) throw badForm(`a Content-Disposition header is longer than ${PART_WINDOW} bytes`)
      continue
    }
    if (!dispositionNames(disposition).some(isParameter)) continue
    if (++fields > MAX_METHOD_FIELDS) throw tooManyFields()
    if (!inPartHead(text, start, delimiters)) continue
    const value = partValue(text, end, delimiters)
    if (value === null) throw badForm(`a _method part is longer than ${PART_WINDOW} bytes`)
    found = named(method, value, found)
  }
  return found ?? NO_METHOD_OVERRIDES
}

/** Where the header whose value begins at `from` ends: its line's end, past the lines folded into it (a space or tab first). One look at each byte. */
function headerEnd(text: string, from: number): number {
  let end = text.indexOf('\n', from)
  while (end !== -1 && (text.charCodeAt(end + 1) === 0x20 || text.charCodeAt(end + 1) === 0x09)) end = text.indexOf('\n', end + 1)
  return end === -1 ? text.length : end
}

/** More `boundary=` readings than any Content-Type needs: each is a pass over the body. */
const MAX_BOUNDARIES = 8
/** No form has this many `_method` fields; each is a bounded look at the body. */
const MAX_METHOD_FIELDS = 1_000
/** How far a part's head, and a `_method` part's value, are looked at: a longer value is no method. */
const PART_WINDOW = 65_536

function badForm(why: string): GatewayError {
  return new GatewayError('bad_request', { detail: `This POST's multipart body cannot be read for its _method fields: ${why}.` })
}

function tooManyFields(): GatewayError {
  return new GatewayError('bad_request', { detail: `This POST has more than ${MAX_METHOD_FIELDS} _method parameters or fields.` })
}

/**
 * A Content-Disposition header's first line; the lines folded into it are found by headerEnd. One
 * pattern that took the value and required "method" in it backtracked over the rest of the line
 * from each "content-disposition:" on it: quadratic, 400 KB of them on one line held the event loop
 * ~24 s (hours at max_body_bytes' 10 MB), and a line of megabytes outgrew the regex engine's stack
 * (a RangeError, answered 500). One pass over the body finds them.
 */
const DISPOSITION = /content-disposition[ \t]*:([^\n]*)/gi
/** "method" with each letter as itself or an escape (busboy decodes `name*=`): what a header naming `_method` has. */
const METHOD_LETTERS = /(?:m|%[46]d)(?:e|%[46]5)(?:t|%[57]4)(?:h|%[46]8)(?:o|%[46]f)(?:d|%[46]4)/gi
/** A blank line: where a part's head ends. */
const BLANK_LINE = /\n\r?\n/

const isParameter = (name: string) => name === PARAMETER || name.startsWith(`${PARAMETER}[`)

/** Where the line of the header at `at` starts, when only spaces or tabs come before it there (PHP takes a bare `\n` for a line end too); -1 otherwise. */
function lineStart(text: string, at: number): number {
  let i = at
  while (i > 0 && (text.charCodeAt(i - 1) === 0x20 || text.charCodeAt(i - 1) === 0x09)) i--
  return i === 0 || text.charCodeAt(i - 1) === 0x0a ? i : -1
}

/** The header at `start` is in a part's head: a delimiter's line came before it, and no blank line since. */
function inPartHead(text: string, start: number, delimiters: readonly string[]): boolean {
  const before = text.slice(Math.max(0, start - PART_WINDOW), start)
  for (const delimiter of delimiters) {
    const at = before.lastIndexOf(delimiter)
    const lineEnd = at === -1 ? -1 : before.indexOf('\n', at + delimiter.length)
    if (lineEnd !== -1 && !BLANK_LINE.test(before.slice(lineEnd))) return true
  }
  return false
}

/** The value of the part whose header ended at `from`: after the head's blank line, up to the next delimiter and the line end before it; null when that is further than PART_WINDOW. */
function partValue(text: string, from: number, delimiters: readonly string[]): string | null {
  const head = text.slice(from, from + PART_WINDOW)
  const blank = BLANK_LINE.exec(head)
  if (blank === null) return ''
  const start = from + blank.index + blank[0].length
  const window = text.slice(start, start + PART_WINDOW + 1)
  let end = window.length
  for (const delimiter of delimiters) {
    const at = window.indexOf(delimiter)
    if (at !== -1 && at < end) end = at
  }
  if (end > PART_WINDOW) return null
  let value = window.slice(0, end)
  if (value.endsWith('\n')) value = value.slice(0, value.endsWith('\r\n') ? -2 : -1)
  return value
}

/** Every name a Content-Disposition value gives (`name=` after anything but a letter, digit or `_`, as Rack's `\bname=`, or `name*=`), read as PHP reads names. */
function dispositionNames(value: string): string[] {
  const names: string[] = []
  for (const match of value.replace(/\r?\n[ \t]+/g, ' ').matchAll(/(?<![A-Za-z0-9_])name(\*?)\s*=\s*(?:"((?:\\.|[^"\\])*)"?|([^;]*))/gi)) {
    const raw = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] as string).trim()
    // RFC 5987 (busboy reads it): charset'language'percent-encoded.
    const text = match[1] === '*' ? decodeLeniently(raw.slice(raw.indexOf("'", raw.indexOf("'") + 1) + 1)) : raw
    names.push(asPhpReadsIt(text))
  }
  return names
}

/**
 * A POST whose body Laravel reads as JSON, for its `_method`: Illuminate\Http\Request makes a
 * JSON request's decoded body its request bag (createFromBase, getInputSource), and Symfony's
 * getMethod() (method override on, as Laravel sets it) reads `_method` from that bag; Express's
 * method-override with a body getter reads express.json()'s `req.body._method`. Laravel's isJson()
 * is "the Content-Type contains `/json` or `+json`", anywhere in the header (a `boundary=+json`
 * makes a multipart POST a JSON one to it): read as that, in any case (wider than Laravel's
 * case-sensitive test: a superset refuses more, never less). A type may be a form's and JSON's at
 * once; both readings are then made. False for any other request, and for a POST with no body:
 * one failed match, nothing allocated.
 */
export function jsonBodyOf(method: string, headers: Pick<RequestHeaders, 'contentType' | 'contentLength' | 'chunked'>): boolean {
  return postWithBody(method, headers) && headers.contentType !== undefined && JSON_TYPE.test(headers.contentType)
}

/** A POST with a body (chunked, or a Content-Length above 0): the only request whose body may name a `_method`. */
function postWithBody(method: string, headers: Pick<RequestHeaders, 'contentLength' | 'chunked'>): boolean {
  return method === 'POST' && hasBody(headers)
}

const JSON_TYPE = /[/+]json/i
