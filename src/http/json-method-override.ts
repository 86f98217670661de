// A JSON POST's top-level `_method` (Laravel's JSON request bag, Express's method-override reading
// `req.body`): read by a scanner, not a parser, in one pass over the body. Which POSTs are read is
// method-override.ts's jsonBodyOf; what a named method means is its `named`.
import { named, NO_METHOD_OVERRIDES, PARAMETER } from './method-override.ts'

/**
 * A charset other than UTF-8 that a JSON reader decodes before parsing: null when there is none,
 * the gateway reading the body's bytes as PHP's json_decode does. body-parser takes any `utf-…`
 * charset (the content-type module's reading: a quoted one unescaped, the last one) and decodes it
 * with iconv-lite (UTF-16, UTF-32, UTF-7, in which `_method` is other bytes), which names
 * encodings by their letters and digits alone (`UTF8`, `utf-8:2000` are UTF-8). Every charset
 * parameter is looked at.
 */
export function unreadableJsonCharset(contentType: string): string | null {
  for (const match of contentType.matchAll(/charset\s*=\s*(?:"((?:\\.|[^"\\])*)"?|([^";,\s]*))/gi)) {
    const charset = match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : (match[2] as string)
    const lower = charset.toLowerCase()
    if (lower.startsWith('utf-') && lower.replace(/:\d{4}$|[^0-9a-z]/g, '') !== 'utf8') return charset
  }
  return null
}

/**
 * The method a JSON POST's top-level `_method` names, other than POST; none when there is none.
 * Read as PHP's json_decode and JSON.parse read it: the exact key `_method` after its escapes are
 * decoded (`"\u005fmethod"` is `_method`; no PHP name mangling applies to JSON keys, so `.method`,
 * `%5Fmethod` or `_METHOD` are other keys), a duplicate key's last value (both parsers keep the
 * last), a string value (Symfony ignores any other; Express's method-override takes an array's
 * first element: every string in an array is read). A `_method` nested in another value is no
 * request parameter, and is not read; nor is one in a body that is not an object.
 *
 * A body that is not valid JSON is read all the same, as far as it goes (a scanner, not a parser:
 * it needs no nesting limit, and allocates nothing but the keys and values it looks at): the
 * upstream's parser refuses such a body (json_decode gives null, Laravel then an empty bag;
 * body-parser answers 400), so no `_method` of it is obeyed, and what the gateway read of it can
 * only refuse more. Refusing every invalid body instead would need the gateway to agree with each
 * parser on what is valid; reading leniently needs agreement only on valid JSON, where the
 * grammar leaves none to disagree on. A UTF-8 byte order mark is skipped (body-parser's decoder
 * strips it). The body's length bounds the work: one pass, each byte looked at once or twice.
 */
export function jsonMethodOverrides(method: string, body: Buffer): readonly string[] {
  const text = body.toString('latin1')
  let i = skipSpace(text, text.startsWith('\xef\xbb\xbf') ? 3 : 0)
  if (text.charCodeAt(i) !== 0x7b) return NO_METHOD_OVERRIDES // `{`
  let values: string[] | null = null
  i++
  for (;;) {
    i = skipSpace(text, i)
    if (text.charCodeAt(i) !== 0x22) break // a key, or the object's end (or what no parser takes)
    const keyEnd = stringEnd(text, i)
    if (keyEnd === -1) break
    const isMethod = isMethodKey(text.slice(i + 1, keyEnd - 1))
    i = skipSpace(text, keyEnd)
    if (text.charCodeAt(i) !== 0x3a) break // `:`
    i = skipSpace(text, i + 1)
    if (isMethod) values = methodValues(text, i) // the last `_method` wins
    i = valueEnd(text, i)
    if (i === -1) break
    i = skipSpace(text, i)
    if (text.charCodeAt(i) !== 0x2c) break // `,`
    i++
  }
  let found: string[] | null = null
  for (const value of values ?? []) found = named(method, value, found)
  return found ?? NO_METHOD_OVERRIDES
}

/** JSON's white space (RFC 8259 §2; PHP's and JSON.parse's): space, tab, line feed, carriage return. */
function skipSpace(text: string, at: number): number {
  let i = at
  for (let c = text.charCodeAt(i); c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = text.charCodeAt(++i));
  return i
}

/** Past the closing quote of the string whose opening quote is at `at`; -1 when it has none. */
function stringEnd(text: string, at: number): number {
  let quote = text.indexOf('"', at + 1)
  while (quote !== -1) {
    let slashes = 0
    while (text.charCodeAt(quote - 1 - slashes) === 0x5c) slashes++
    if (slashes % 2 === 0) return quote + 1
    quote = text.indexOf('"', quote + 1)
  }
  return -1
}

/** Past the value at `at` (a string, an object or array with all it nests, or a number or literal); -1 when it does not end. */
function valueEnd(text: string, at: number): number {
  const c = text.charCodeAt(at)
  if (c === 0x22) return stringEnd(text, at)
  if (c !== 0x7b && c !== 0x5b) {
    SCALAR_END.lastIndex = at
    return SCALAR_END.exec(text)?.index ?? text.length
  }
  // A loop over the characters, not a regular expression's matches: a third of the time on nested JSON.
  let depth = 0
  for (let i = at; i < text.length; i++) {
    const m = text.charCodeAt(i)
    if (m === 0x22) {
      const end = stringEnd(text, i)
      if (end === -1) return -1
      i = end - 1
    } else if (m === 0x7b || m === 0x5b) depth++
    else if ((m === 0x7d || m === 0x5d) && --depth === 0) return i + 1
  }
  return -1
}

const SCALAR_END = /[\s,\]}"[{]/g

/** The strings a `_method` value gives: itself, or an array's strings; none for any other value. */
function methodValues(text: string, at: number): string[] {
  if (text.charCodeAt(at) === 0x22) {
    const end = stringEnd(text, at)
    return end === -1 ? [] : [unescaped(text.slice(at + 1, end - 1))]
  }
  const values: string[] = []
  if (text.charCodeAt(at) !== 0x5b) return values
  let i = at + 1
  for (;;) {
    i = skipSpace(text, i)
    const end = valueEnd(text, i)
    if (end === -1) break
    if (text.charCodeAt(i) === 0x22) values.push(unescaped(text.slice(i + 1, end - 1)))
    i = skipSpace(text, end)
    if (text.charCodeAt(i) !== 0x2c) break
    i++
  }
  return values
}

/** Whether a key's raw text (between its quotes) decodes to `_method`: most keys are told apart by their length. */
function isMethodKey(raw: string): boolean {
  if (raw === PARAMETER) return true
  return raw.length > PARAMETER.length && raw.length <= PARAMETER.length * 6 && raw.includes('\\') && unescaped(raw) === PARAMETER
}

/** A JSON string's escapes decoded (`\u005f`, `\/`, `\n`, …); one no parser takes is kept as it is. */
function unescaped(raw: string): string {
  if (!raw.includes('\\')) return raw
  return raw.replace(/\\(?:u([0-9a-fA-F]{4})|([\s\S]))/g, (_, hex: string | undefined, c: string) => hex !== undefined ? String.fromCharCode(Number.parseInt(hex, 16)) : (ESCAPES[c] ?? c))
}

const ESCAPES: Readonly<Record<string, string>> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }
