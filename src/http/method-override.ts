// The `_method` query parameter: Laravel and Symfony (httpMethodParameterOverride, on in Laravel),
// Express's method-override (`methodOverride('_method')`), Spring's HiddenHttpMethodFilter (a
// servlet parameter: the query's too) and Jersey's HttpMethodOverrideFilter run a POST that carries
// one as the method it names, with the query forwarded as sent. The gateway routed and authorized it as a POST,
// so a caller allowed POST and denied DELETE had an upstream run DELETE (an adversarial probe).
// Only POST is overridden by those frameworks, so only a POST's query is read.
import { GatewayError } from '../errors/index.ts'
import { isMethodToken } from './described-request.ts'

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
  let found: string[] | null = null
  for (const pair of query.split(PAIR_SEPARATORS)) {
    const equals = pair.indexOf('=')
    const name = asPhpReadsIt(decodeLeniently(equals === -1 ? pair : pair.slice(0, equals)))
    if (name !== PARAMETER && !name.startsWith(`${PARAMETER}[`)) continue
    const value = decodeLeniently(equals === -1 ? '' : pair.slice(equals + 1)).trim().toUpperCase()
    if (value === '' || value === method) continue
    if (!isMethodToken(value)) {
      throw new GatewayError('bad_request', { detail: 'The _method parameter of this POST is not an HTTP method: frameworks that obey it would run the request as another method.' })
    }
    if (!(found ??= []).includes(value)) found.push(value)
  }
  return found ?? NO_METHOD_OVERRIDES
}

/** `&`, and `;`, which PHP (arg_separator.input) and older Pythons also split on. */
const PAIR_SEPARATORS = /[&;]/

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
