// A dataset's parameters: read from the query string (and the route's path parameters), each
// checked against its declared type and rules before anything is queried. A failure is 400
// invalid_parameter naming the parameter and the rule. The values come out in the form they are
// bound: strings, numbers, booleans, `YYYY-MM-DD` dates and RFC 3339 timestamps (UTC).
import type { DatasetParamConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'

export type ParamValue = string | number | boolean | null | ParamValue[]

export interface CompiledParam {
  readonly name: string
  readonly config: DatasetParamConfig
  readonly allowed: ReadonlySet<string> | null
  readonly fromPath: boolean
}

export function compileParams(params: Readonly<Record<string, DatasetParamConfig>>, pathParams: ReadonlySet<string>): CompiledParam[] {
  return Object.entries(params).map(([name, config]) => {
    const values = config.values ?? config.enum
    return { name, config, allowed: values ? new Set(values) : null, fromPath: pathParams.has(name) }
  })
}

export function invalidParameter(name: string, rule: string): GatewayError {
  return new GatewayError('invalid_parameter', { detail: `Parameter "${name}": ${rule}.` })
}

/**
 * A caller's value the database took but could not use (a pattern, a row count), where the database
 * does not say which value it was: 400 naming the statement's parameters, with the database's words
 * (`why`, cut to 200 characters). Null when the statement binds no caller value: then its own
 * values failed, the operator's problem (502, logged).
 */
export function callerValueRefused(names: ReadonlyArray<string | null>, why: string): GatewayError | null {
  const params = [...new Set(names.filter((name): name is string => typeof name === 'string'))]
  if (params.length === 0) return null
  const words = why.slice(0, 200)
  if (params.length === 1) return invalidParameter(params[0] as string, `the database could not use the value: ${words}`)
  return new GatewayError('invalid_parameter', { detail: `One of the parameters ${params.map((name) => `"${name}"`).join(', ')}: the database could not use its value: ${words}.` })
}

/**
 * The query string, each name and value percent-decoded as UTF-8 (application/x-www-form-urlencoded,
 * URL Standard §5.1), in one pass. URLSearchParams turns bytes that are not UTF-8 (`s=%ff`) into
 * U+FFFD: a value other than the one sent, bound without a word (found by a probe). A `%` not
 * followed by two hex digits stays as it is, as URLSearchParams keeps it.
 */
export function readQuery(text: string): URLSearchParams {
  const query = new URLSearchParams()
  // As URLSearchParams reads a string: a leading `?` is not part of the first name.
  for (const pair of (text.startsWith('?') ? text.slice(1) : text).split('&')) {
    if (pair === '') continue
    const at = pair.indexOf('=')
    const rawName = at === -1 ? pair : pair.slice(0, at)
    const name = formDecoded(rawName)
    const value = formDecoded(at === -1 ? '' : pair.slice(at + 1))
    if (name === null || value === null) {
      const shown = [...new URLSearchParams(`${rawName}=`).keys()][0] ?? rawName
      throw invalidParameter(shown, name === null ? 'its name is not percent-encoded UTF-8' : 'not percent-encoded UTF-8')
    }
    query.append(name, value)
  }
  return query
}

/** A name or value of a query: `+` a space, `%XX` a byte, the bytes UTF-8; null when they are not. */
function formDecoded(encoded: string): string | null {
  const spaced = encoded.includes('+') ? encoded.replaceAll('+', ' ') : encoded
  if (!spaced.includes('%')) return spaced
  try {
    return decodeURIComponent(spaced.replace(/%(?![0-9A-Fa-f]{2})/g, '%25'))
  } catch {
    return null
  }
}

/**
 * The parameters' values from the query and the path. `reserved` names (format, cursor) are the
 * gateway's; any other name the dataset does not declare is refused (a typo would otherwise be a
 * filter silently left out).
 */
export function readParams(compiled: readonly CompiledParam[], query: URLSearchParams, pathValues: Readonly<Record<string, string>>, reserved: ReadonlySet<string>, now: number): Map<string, ParamValue> {
  const known = new Set(compiled.map((p) => p.name))
  for (const name of query.keys()) {
    if (!known.has(name) && !reserved.has(name)) throw invalidParameter(name, 'not a parameter of this dataset')
  }
  // `format=csv&format=json` was answered as the first said, while a declared parameter given twice is 400.
  for (const name of reserved) {
    if (query.getAll(name).length > 1) throw invalidParameter(name, 'one value expected, got several')
  }
  const out = new Map<string, ParamValue>()
  for (const param of compiled) {
    const raw = param.fromPath ? (pathValues[param.name] === undefined ? [] : [decoded(pathValues[param.name] as string)]) : query.getAll(param.name)
    out.set(param.name, valueOf(param, raw, now))
  }
  return out
}

function valueOf(param: CompiledParam, raw: string[], now: number): ParamValue {
  const { config, name } = param
  if (raw.length === 0 || (raw.length === 1 && raw[0] === '')) {
    if (config.required) throw invalidParameter(name, 'required')
    if (config.default === undefined) return config.list ? [] : null
    const defaults = Array.isArray(config.default) ? config.default.map(String) : [String(config.default)]
    return config.list ? defaults.map((text) => parseOne(param, text, now)) : parseOne(param, defaults[0] as string, now)
  }
  if (!config.list) {
    if (raw.length > 1) throw invalidParameter(name, 'one value expected, got several')
    return parseOne(param, raw[0] as string, now)
  }
  const items = raw.flatMap((text) => text.split(','))
  if (items.length > config.max_items) throw invalidParameter(name, `at most ${config.max_items} values`)
  return items.map((text) => parseOne(param, text, now))
}

const INT = /^[-+]?\d{1,16}$/
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i
const FRACTION = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\.(\d+)/i
const RELATIVE = /^([-+])(\d{1,6})(s|min|h|d|w)$/
const RELATIVE_MS = { s: 1_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const
const TRUE = new Set(['true', '1', 'yes', 'on'])
const FALSE = new Set(['false', '0', 'no', 'off'])

function parseOne(param: CompiledParam, text: string, now: number): string | number | boolean {
  const { config, name } = param
  switch (config.type) {
    case 'string': {
      if (param.allowed && !param.allowed.has(text)) throw invalidParameter(name, `one of ${[...param.allowed].join(', ')}`)
      const length = codePoints(text)
      if (typeof config.min === 'number' && length < config.min) throw invalidParameter(name, `at least ${config.min} characters`)
      if (typeof config.max === 'number' && length > config.max) throw invalidParameter(name, `at most ${config.max} characters`)
      if (text.includes('\u0000')) throw invalidParameter(name, 'must not contain NUL')
      return text
    }
    case 'enum': {
      if (!param.allowed?.has(text)) throw invalidParameter(name, `one of ${[...(param.allowed ?? [])].join(', ')}`)
      return text
    }
    case 'int': {
      if (!INT.test(text) || !Number.isSafeInteger(Number(text))) throw invalidParameter(name, 'an integer')
      return bounded(param, Number(text))
    }
    case 'number': {
      const value = Number(text)
      if (!NUMBER.test(text) || !Number.isFinite(value)) throw invalidParameter(name, 'a number')
      // Bound as the double it rounds to, `9007199254740993` was 9007199254740992 without a word
      // (an adversarial probe): refused, as an int beyond 2^53 is.
      if (decimalValue(text) !== decimalValue(String(value))) throw invalidParameter(name, `a number a 64-bit float holds as written (this one would be ${String(value)})`)
      return bounded(param, value)
    }
    case 'bool': {
      const lower = text.toLowerCase()
      if (TRUE.has(lower)) return true
      if (FALSE.has(lower)) return false
      throw invalidParameter(name, 'true or false')
    }
    case 'date': {
      const ms = dateMs(text, now)
      if (ms === null) throw invalidParameter(name, 'a date: YYYY-MM-DD, today, or relative like -30d')
      return new Date(boundedTime(param, ms, now, dateMs)).toISOString().slice(0, 10)
    }
    case 'timestamp': {
      const ms = timestampMs(text, now)
      if (ms === null) throw invalidParameter(name, 'a timestamp: RFC 3339 (2026-01-31T12:00:00Z), now, or relative like -12h')
      const micros = microsOf(text)
      // Rounded or cut, a finer value would compare wrongly with a stored one in one direction or the other.
      if (micros === null) throw invalidParameter(name, 'a timestamp to the microsecond at most: digits past the sixth after the second must be 0')
      const iso = new Date(boundedTime(param, ms, now, timestampMs, micros)).toISOString()
      // Written to the millisecond, a value read from the database (`updated_at > :since`) lost its
      // microseconds and matched its own row again (found by a probe).
      return micros === 0 ? iso : `${iso.slice(0, 23)}${String(micros).padStart(3, '0')}Z`
    }
  }
}

/** Characters as a person (and PostgreSQL's length()) counts them: `𝄞` is one, though two UTF-16 units. */
function codePoints(text: string): number {
  let surrogates = 0
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0xdc00 && unit <= 0xdfff && i > 0) {
      const before = text.charCodeAt(i - 1)
      if (before >= 0xd800 && before <= 0xdbff) surrogates++
    }
  }
  return text.length - surrogates
}

/** A decimal as its digits and exponent, without the zeros that change nothing: `1.50e1`, `15.` and `15` are one. */
function decimalValue(text: string): string {
  const [, sign, whole = '', fraction = '', exponent = '0'] = /^([-+]?)(\d*)\.?(\d*)(?:[eE]([-+]?\d+))?$/.exec(text) ?? []
  const digits = `${whole}${fraction}`.replace(/^0+/, '')
  if (digits === '') return '0'
  const significant = digits.replace(/0+$/, '')
  return `${sign === '-' ? '-' : ''}${significant}e${BigInt(exponent) - BigInt(fraction.length) + BigInt(digits.length - significant.length)}`
}

function bounded(param: CompiledParam, value: number): number {
  const { min, max } = param.config
  if (typeof min === 'number' && value < min) throw invalidParameter(param.name, `at least ${min}`)
  if (typeof max === 'number' && value > max) throw invalidParameter(param.name, `at most ${max}`)
  return value
}

/** `micros`: the microseconds past `ms` (0–999), for a timestamp; a bound's own are read the same way. */
function boundedTime(param: CompiledParam, ms: number, now: number, parse: (text: string, now: number) => number | null, micros = 0): number {
  const { min, max } = param.config
  const minMs = min === undefined ? null : parse(String(min), now)
  const maxMs = max === undefined ? null : parse(String(max), now)
  const since = (bound: number, text: string) => (ms === bound ? micros - (microsOf(text) ?? 0) : ms - bound)
  if (minMs !== null && since(minMs, String(min)) < 0) throw invalidParameter(param.name, `not before ${String(min)}`)
  if (maxMs !== null && since(maxMs, String(max)) > 0) throw invalidParameter(param.name, `not after ${String(max)}`)
  return ms
}

/**
 * The fourth to sixth digits of a timestamp's fraction of a second (Date keeps three); null when it
 * has a seventh to ninth that is not 0: PostgreSQL keeps microseconds (and would round the rest).
 */
function microsOf(text: string): number | null {
  const fraction = FRACTION.exec(text)?.[1]
  if (fraction === undefined) return 0
  const digits = fraction.padEnd(9, '0')
  return /^0*$/.test(digits.slice(6)) ? Number(digits.slice(3, 6)) : null
}

/** Years 0001 to 9999: what a YYYY-MM-DD date can write and PostgreSQL's and SQLite's dates read back; further is no date a client meant. */
const FIRST_MS = -62_135_596_800_000 // 0001-01-01T00:00:00Z
const LAST_MS = 253_402_300_799_999 // 9999-12-31T23:59:59.999Z
const inRange = (ms: number): number | null => (ms >= FIRST_MS && ms <= LAST_MS ? ms : null)

/** Midnight UTC of a YYYY-MM-DD date, `today`, or a relative date (`-30d`, `+1w`): whole days only. */
export function dateMs(text: string, now: number): number | null {
  const today = Math.floor(now / 86_400_000) * 86_400_000
  if (text === 'today') return today
  const relative = RELATIVE.exec(text)
  if (relative) {
    const unit = relative[3] as keyof typeof RELATIVE_MS
    if (unit !== 'd' && unit !== 'w') return null
    return inRange(today + (relative[1] === '-' ? -1 : 1) * Number(relative[2]) * RELATIVE_MS[unit])
  }
  const match = DATE.exec(text)
  if (!match) return null
  // Not Date.UTC: it reads years 0–99 as 1900–1999, and 0050-06-01 was refused as no date (found by a probe).
  const ms = new Date(0).setUTCFullYear(Number(match[1]), Number(match[2]) - 1, Number(match[3]))
  // 2026-02-30 is not a date (it would roll into March).
  return inRange(ms) !== null && new Date(ms).toISOString().slice(0, 10) === text ? ms : null
}

/** An RFC 3339 timestamp (no zone: UTC), `now`, or relative (`-12h`, `-15min`, `-30d`). */
export function timestampMs(text: string, now: number): number | null {
  if (text === 'now') return now
  const relative = RELATIVE.exec(text)
  if (relative) return inRange(now + (relative[1] === '-' ? -1 : 1) * Number(relative[2]) * RELATIVE_MS[relative[3] as keyof typeof RELATIVE_MS])
  if (DATE.test(text)) return dateMs(text, now)
  if (!TIMESTAMP.test(text)) return null
  // 2026-02-30T00:00:00Z is not a time: Date.parse would roll it into March, as Date.UTC would the date.
  if (dateMs(text.slice(0, 10), now) === null) return null
  const zoned = /(Z|[+-]\d{2}(:?\d{2})?)$/i.test(text) ? text : `${text}Z`
  const ms = Date.parse(zoned.replace(' ', 'T'))
  return Number.isNaN(ms) ? null : inRange(ms)
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw invalidParameter('path', 'not valid percent-encoding')
  }
}
