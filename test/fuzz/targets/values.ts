// The config's value parsers (src/config/values.ts, route-pattern.ts, src/http/hosts.ts): results
// within their documented bounds, parse(format(x)) = x where a value carries its text, globs
// against a reference matcher, and work linear in the input.
import { isIP } from 'node:net'
import fc from 'fast-check'
import { addressSet, MAX_DURATION_MS, MAX_RATE_COUNT, parseCidr, parseDuration, parseGlob, parseListen, parseRate, parseRoutePattern, type RoutePattern } from '../../../src/config/index.ts'
import { hostAllowList, parseHostPattern } from '../../../src/http/hosts.ts'
import { anyText, fuzzTarget, LARGE_INPUT_BYTES, LARGE_INPUT_CPU_MS, largeInput, stringOf, withinCpu } from '../lib.ts'

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const RATE_PERIODS = new Set([1_000, 60_000, 3_600_000, 86_400_000])

/** Text made of the pieces each parser reads, and anything at all. */
const valueText = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.constantFrom('0', '1', '9', '00', '255', '65535', '99999999999999999999', '.', ':', '::', '/', '[', ']', 'ms', 's', 'm', 'h', 'd', ' ', '\t', '\n', 'ffff', 'a', '*', '?', '-', '%', '%2F', 'e', '+', '-', '_', 'x'), { maxLength: 12 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: anyText },
)

const bigCount = fc.oneof(fc.nat(100_000), fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String), fc.nat().map(String))

export const durations = fuzzTarget({
  name: 'values.duration',
  longRuns: 100_000,
  property: () =>
    fc.property(valueText, bigCount, fc.constantFrom(...Object.keys(UNIT_MS)), fc.constantFrom('', ' ', '\t'), (text, count, unit, pad) => {
      const written = `${pad}${count}${unit}${pad}`
      for (const input of [text, written]) {
        const parsed = parseDuration(input)
        if (parsed.ok && !(Number.isSafeInteger(parsed.value) && parsed.value >= 0 && parsed.value <= MAX_DURATION_MS)) {
          throw new Error(`duration "${input}" is ${parsed.value} ms`)
        }
      }
      // As written: N units, whenever that is within the bound.
      const ms = Number(count) * (UNIT_MS[unit] as number)
      const parsed = parseDuration(written)
      if (parsed.ok ? parsed.value !== ms : ms <= MAX_DURATION_MS) throw new Error(`"${written}" parsed as ${JSON.stringify(parsed)}`)
    }),
  examples: [
    // Unbounded digits: 1e20 ms, and Infinity for 400 of them.
    ['99999999999999999999ms', '0', 'ms', ''],
    [`${'9'.repeat(400)}ms`, '0', 'ms', ''],
  ],
})

export const rates = fuzzTarget({
  name: 'values.rate',
  longRuns: 100_000,
  property: () =>
    fc.property(valueText, bigCount, fc.constantFrom('s', 'm', 'h', 'd'), (text, count, unit) => {
      for (const input of [text, `${count}/${unit}`]) {
        const parsed = parseRate(input)
        if (!parsed.ok) continue
        const { count: n, periodMs, text: written } = parsed.value
        if (!(Number.isSafeInteger(n) && n >= 1 && n <= MAX_RATE_COUNT) || !RATE_PERIODS.has(periodMs)) throw new Error(`rate "${input}" is ${n} per ${periodMs} ms`)
        if (written !== input.trim()) throw new Error(`rate "${input}" keeps the text "${written}"`)
        const again = parseRate(written)
        if (!again.ok || JSON.stringify(again.value) !== JSON.stringify(parsed.value)) throw new Error(`rate "${written}" does not round-trip`)
      }
      if (Number(count) >= 1 && Number(count) <= MAX_RATE_COUNT && !parseRate(`${count}/${unit}`).ok) throw new Error(`rate "${count}/${unit}" refused`)
    }),
  examples: [
    // 2^53 is not a count a rate can hold exactly (2^53 + 1 reads as 2^53), nor a 16-digit RFC 8941 integer.
    ['', '9007199254740992', 's'],
  ],
})

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'))
const ipv6 = fc.oneof(fc.ipV6(), fc.constantFrom('::', '::1', '::ffff:10.1.2.3', 'fe80::1%eth0', '2001:db8::'))

export const cidrs = fuzzTarget({
  name: 'values.cidr',
  longRuns: 100_000,
  property: () =>
    fc.property(fc.oneof(valueText, fc.tuple(fc.oneof(ipv4, ipv6), fc.option(fc.nat(140))).map(([a, p]) => (p === null ? a : `${a}/${p}`))), (text) => {
      const parsed = parseCidr(text)
      if (!parsed.ok) return
      const { address, prefix, family } = parsed.value
      const version = isIP(address)
      const max = version === 4 ? 32 : 128
      if (version === 0 || family !== (version === 4 ? 'ipv4' : 'ipv6')) throw new Error(`CIDR "${text}" has address ${address} (${family})`)
      if (!(Number.isInteger(prefix) && prefix >= 0 && prefix <= max)) throw new Error(`CIDR "${text}" has prefix ${prefix}`)
      const again = parseCidr(parsed.value.text)
      if (!again.ok || JSON.stringify(again.value) !== JSON.stringify(parsed.value)) throw new Error(`CIDR "${parsed.value.text}" does not round-trip`)
      if (!addressSet([parsed.value]).contains(address)) throw new Error(`${address} is not in its own CIDR ${text}`)
    }),
})

/** What `*` and `?` mean, as the README says it: `*` any run of characters (none included), `?` exactly one (a code point). */
function globMatchesReference(glob: string, text: string): boolean {
  const value = Array.from(text)
  // reachable[j]: the glob's prefix read so far can match the value's first j characters.
  let reachable = new Array<boolean>(value.length + 1).fill(false)
  reachable[0] = true
  for (const c of glob) {
    const next = new Array<boolean>(value.length + 1).fill(false)
    for (let j = 0; j <= value.length; j++) {
      if (c === '*') next[j] = reachable[j] === true || (j > 0 && next[j - 1] === true)
      else if (j > 0 && reachable[j - 1] === true && (c === '?' || value[j - 1] === c)) next[j] = true
    }
    reachable = next
  }
  return reachable[value.length] === true
}

const globChars = 'ab*?.-\\^$()|+/'
export const globs = fuzzTarget({
  name: 'values.glob',
  longRuns: 150_000,
  property: () =>
    fc.property(fc.oneof(stringOf(globChars, 10), stringOf('[]{}ab*', 6), anyText), stringOf(globChars, 14), fc.array(stringOf('ab.', 3), { maxLength: 6 }), (text, value, fillings) => {
      const parsed = parseGlob(text)
      if (!parsed.ok) {
        if (text !== '' && !/[[\]{}]/.test(text)) throw new Error(`glob "${text}" refused: ${parsed.message}`)
        return
      }
      const glob = parsed.value
      if (glob.literal !== !/[*?]/.test(text)) throw new Error(`glob "${text}" literal: ${glob.literal}`)
      if (glob.matches(value) !== globMatchesReference(text, value)) throw new Error(`glob "${text}" on "${value}": ${glob.matches(value)}`)
      // An instance of the glob (each * and ? filled in) always matches.
      let i = 0
      const instance = text.replace(/[*?]/g, (w) => {
        const filling = fillings[i++ % Math.max(fillings.length, 1)] ?? ''
        return w === '*' ? filling : (filling[0] ?? 'x')
      })
      if (!glob.matches(instance)) throw new Error(`glob "${text}" does not match its instance "${instance}"`)
    }),
  examples: [
    // A glob of `?` alone, in the first version of the RegExp's replacement.
    ['?', '', []],
  ],
})

export const listens = fuzzTarget({
  name: 'values.listen',
  longRuns: 50_000,
  property: () =>
    fc.property(valueText, fc.oneof(ipv4, ipv6.map((a) => `[${a}]`), fc.domain()), fc.nat(70_000), (text, host, port) => {
      for (const input of [text, `${host}:${port}`]) {
        const parsed = parseListen(input)
        if (!parsed.ok) {
          if (input !== text && port <= 65_535 && !host.includes('%')) throw new Error(`listen address "${input}" refused`)
          continue
        }
        if (!(Number.isInteger(parsed.value.port) && parsed.value.port >= 0 && parsed.value.port <= 65_535)) throw new Error(`listen "${input}" has port ${parsed.value.port}`)
        if (parsed.value.host === '') throw new Error(`listen "${input}" has no host`)
        const again = parseListen(parsed.value.text)
        if (!again.ok || JSON.stringify(again.value) !== JSON.stringify(parsed.value)) throw new Error(`listen "${parsed.value.text}" does not round-trip`)
      }
    }),
})

export const hostPatterns = fuzzTarget({
  name: 'values.host',
  longRuns: 100_000,
  property: () =>
    fc.property(fc.oneof(valueText, fc.domain(), fc.domain().map((d) => `*.${d}`), fc.tuple(fc.domain(), fc.nat(70_000)).map(([d, p]) => `${d}:${p}`)), valueText, (text, host) => {
      const parsed = parseHostPattern(text)
      const list = hostAllowList(parsed.ok ? [parsed.value] : [])
      list.matches(host)
      if (!parsed.ok) return
      const again = parseHostPattern(parsed.value.text)
      if (!again.ok || JSON.stringify(again.value) !== JSON.stringify(parsed.value)) throw new Error(`host "${parsed.value.text}" does not round-trip`)
      const { name, wildcard, port } = parsed.value
      const example = `${wildcard ? `x.${name}` : name}${port === null ? '' : `:${port}`}`
      if (!list.matches(example.toUpperCase())) throw new Error(`host pattern "${text}" does not match ${example.toUpperCase()}`)
      if (wildcard && list.matches(`${name}${port === null ? '' : `:${port}`}`)) throw new Error(`wildcard "${text}" matches its bare suffix`)
    }),
})

function formatPattern(pattern: RoutePattern): string {
  return `/${pattern.segments.map((s) => (s.kind === 'literal' ? s.raw : s.kind === 'param' ? `:${s.name}` : '*')).join('/')}`
}

export const routePatterns = fuzzTarget({
  name: 'values.route-pattern',
  longRuns: 100_000,
  property: () =>
    fc.property(
      fc.oneof(
        fc.array(fc.constantFrom('/', 'a', ':', 'p', '*', '%', '%2F', '%2e', '%2E%2E', '.', '..', ';', '%zz', 'Z', '_', '~', '%C4%B1', ' ', '//'), { maxLength: 12 }).map((p) => p.join('')),
        anyText,
      ),
      (text) => {
        const parsed = parseRoutePattern(text)
        if (!parsed.ok) return
        const pattern = parsed.value
        if (formatPattern(pattern) !== text) throw new Error(`route pattern "${text}" formats back as "${formatPattern(pattern)}"`)
        pattern.segments.forEach((s, i) => {
          if (s.kind === 'wildcard' && i !== pattern.segments.length - 1) throw new Error(`"*" inside ${text}`)
          if (s.kind === 'literal' && (s.value === '.' || s.value === '..' || s.value.includes('/'))) throw new Error(`literal ${JSON.stringify(s.value)} in ${text}`)
          if (s.kind === 'literal' && s.value === '' && i !== pattern.segments.length - 1) throw new Error(`empty segment inside ${text}`)
        })
        if (new Set(pattern.params).size !== pattern.params.length) throw new Error(`a parameter twice in ${text}`)
      },
    ),
})

const LARGE_PIECES = fc.constantFrom('a', 'b', '*', '?', '.', ':', '/', '1', '0', ' ', 'ms', '%', '[', ']', '-', 'x.', '::', 'ffff:')
const GLOBS = ['*a*b', '*a*a*a*b', '*?*?*?x', 'a*', '*.*.*.*.*.*.*!', '*a*b*c*d*e*f*g*h*', '??*??*??*z', '*' + 'a*'.repeat(20) + 'b']

export const largeValues = fuzzTarget({
  name: 'values.large',
  longRuns: 3_000,
  shortScale: 0.05,
  property: () =>
    fc.property(largeInput(LARGE_PIECES), fc.constantFrom(...GLOBS), (text, globText) => {
      const bound = (what: string, fn: () => unknown) => withinCpu(LARGE_INPUT_CPU_MS, `${what} of 64 KB`, fn)
      bound('parseDuration', () => parseDuration(text))
      bound('parseRate', () => parseRate(text))
      bound('parseCidr', () => parseCidr(text))
      bound('parseListen', () => parseListen(text))
      bound('parseHostPattern', () => parseHostPattern(text))
      bound('parseRoutePattern', () => parseRoutePattern(`/${text}`))
      bound('parseGlob', () => parseGlob(text))
      const glob = parseGlob(globText)
      if (glob.ok) bound(`glob "${globText}" matching`, () => glob.value.matches(text))
      const hosts = hostAllowList([parseHostPattern('*.example.com'), parseHostPattern('api.example.com:8443')].flatMap((p) => (p.ok ? [p.value] : [])))
      bound('a Host header check', () => hosts.matches(`${text}.example.com`))
      bound('a Host header check', () => hosts.matches(text))
    }),
  examples: [
    // Globs compiled to a RegExp (`^.*a.*b$`) backtracked: seconds for one 64 KB claim value.
    ['a'.repeat(LARGE_INPUT_BYTES), '*a*b'],
  ],
})
