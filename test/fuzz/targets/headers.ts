// The raw header inspector (src/http/request-headers.ts) and the managed-header folding
// (src/http/managed-headers.ts), against a model written from README "What reaches the upstream".
import fc from 'fast-check'
import type { GatewayError } from '../../../src/errors/index.ts'
import { inspectHeaders, type RequestHeaders } from '../../../src/http/request-headers.ts'
import { foldHeaderName, isManagedVariant, isReservedForConfig, MANAGED_REQUEST_HEADERS } from '../../../src/http/managed-headers.ts'
import { anyText, fuzzTarget, LARGE_INPUT_CPU_MS, largeInput, refusedWith, stringOf, withinCpu } from '../lib.ts'

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
const FAMILIES = [
  'x-bouncer-', 'x-forwarded-',
  // Other identity-aware proxies' (README "What reaches the upstream").
  'x-auth-request-', 'x-remote-extra-', 'x-webauth-', 'x-pomerium-', 'x-authentik-', 'x-vouch-', 'tailscale-user-', 'x-consumer-',
  'x-authenticated-', 'x-amzn-oidc-', 'x-amzn-mtls-', 'x-ms-client-principal', 'x-ms-token-', 'cf-access-', 'cf-client-cert-',
  'x-goog-authenticated-user-', 'x-ssl-client-', 'ssl-client-', 'x-client-cert',
]

const KNOWN_NAMES = [
  ...MANAGED_REQUEST_HEADERS, 'content-length', 'user-agent', 'accept', 'x-api-key', 'x-bouncer-roles', 'x-forwarded-prefix',
  'x-forwarded', 'x-bouncers', 'x-custom', 'cookie', 'content-type', 'x-real-ip-address',
  'x-auth-request-user', 'x-pomerium-claim-email', 'cf-access-jwt-assertion', 'x-ms-client-principal', 'x-client-cert-present',
  'x-authenticity', 'cf-ray', 'x-remote-addr', 'x-goog-api-client', 'x-ms-request-id', 'ssl-client',
]

/** A name respelled as a client might: any letter's case flipped, any `-` turned into another token character. */
const respelled = fc.constantFrom(...KNOWN_NAMES).chain((name) =>
  fc.array(fc.tuple(fc.boolean(), fc.constantFrom('-', '-', '-', '_', '.', '~', '!', '|', '+')), { minLength: name.length, maxLength: name.length })
    .map((choices) => [...name].map((c, i) => {
      const [upper, dash] = choices[i] as [boolean, string]
      return c === '-' ? dash : upper ? c.toUpperCase() : c
    }).join('')),
)

const headerName = fc.oneof(
  { weight: 6, arbitrary: respelled },
  { weight: 2, arbitrary: stringOf(TOKEN_CHARS, 24).filter((n) => n !== '') },
  // Not a token: Node's parser refuses these, but the inspector must not care.
  { weight: 1, arbitrary: anyText },
)

const LISTED = fc.constantFrom('close', 'keep-alive', 'x-custom', 'X-Custom', 'accept', 'x-api-key', 'upgrade', 'te', 'cookie', '', ' ')
const connectionValue = fc.array(LISTED, { maxLength: 5 }).chain((names) =>
  fc.array(fc.constantFrom(',', ', ', ' ,', ',,'), { minLength: names.length, maxLength: names.length }).map((seps) => names.map((n, i) => `${n}${seps[i]}`).join('')),
)

const valueFor = (name: string): fc.Arbitrary<string> => {
  switch (name.toLowerCase()) {
    case 'content-length':
      return fc.oneof(fc.constantFrom('0', '10', '010', ' 1', '1,1', '-1', '1e3', '0x10', '', '9'.repeat(30), '1 '), fc.nat().map(String))
    case 'transfer-encoding':
      return fc.constantFrom('chunked', 'Chunked', ' chunked ', 'gzip, chunked', 'identity', 'chunked, chunked', '')
    case 'connection':
      return connectionValue
    case 'expect':
      return fc.constantFrom('100-continue', '100-Continue', '100-continue ', 'x')
    default:
      return fc.string({ unit: 'binary-ascii', maxLength: 24 })
  }
}

const rawHeaders = fc
  .array(headerName.chain((name) => valueFor(name).map((value) => [name, value] as const)), { maxLength: 12 })
  .map((pairs) => pairs.flat())

/** How an upstream that folds `_` (and everything else but letters and digits) into `-` reads a name. */
const foldedAsUpstreams = (lower: string) => lower.replace(/[^a-z0-9]/g, '-')
const inFamily = (name: string) => FAMILIES.some((prefix) => name.startsWith(prefix))
const managedAsRead = (lower: string) => MANAGED_REQUEST_HEADERS.has(foldedAsUpstreams(lower)) || inFamily(foldedAsUpstreams(lower))

/** The forwarded list the README promises: every header but managed ones (as any upstream reads them) and those named in Connection. */
function expectedForward(raw: readonly string[]): string[] {
  const named = new Set<string>()
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'connection') continue
    for (const token of (raw[i + 1] as string).split(',')) named.add(token.trim().toLowerCase())
  }
  for (const hopOnly of ['', 'close', 'keep-alive']) named.delete(hopOnly)
  const out: string[] = []
  let sawLength = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    if (MANAGED_REQUEST_HEADERS.has(name) || managedAsRead(name) || named.has(name)) continue
    if (name === 'content-length') {
      if (sawLength) continue // equal duplicates collapse to one
      sawLength = true
    }
    out.push(name, raw[i + 1] as string)
  }
  return out
}

function checkInspected(raw: readonly string[], result: RequestHeaders | GatewayError): void {
  const values = (wanted: string) => raw.filter((_, i) => i % 2 === 1 && (raw[i - 1] as string).toLowerCase() === wanted)
  const lengths = values('content-length')
  const chunked = values('transfer-encoding')
  if (result instanceof Error) {
    // Refused: one of the reasons the README lists must hold.
    const ambiguous =
      values('authorization').length > 1 || values('host').length > 1 || values('content-type').length > 1 ||
      lengths.some((v) => !/^\d+$/.test(v)) || new Set(lengths.map(Number)).size > 1 ||
      chunked.length > 1 || chunked.some((v) => v.trim().toLowerCase() !== 'chunked') ||
      (chunked.length > 0 && lengths.length > 0) ||
      values('expect').some((v) => v.toLowerCase() !== '100-continue')
    if (!ambiguous) throw new Error(`refused a request whose headers are not ambiguous: ${result.detail}`)
    return
  }
  if (chunked.length > 0 && result.contentLength !== undefined) throw new Error('kept both Transfer-Encoding and Content-Length')
  if (lengths.length > 0 && result.contentLength !== Number(lengths[0])) throw new Error('Content-Length read wrong')
  if (result.authorization !== values('authorization')[0]) throw new Error('Authorization read wrong')
  if (result.host !== values('host')[0]) throw new Error('Host read wrong')
  if (result.contentType !== values('content-type')[0]) throw new Error('Content-Type read wrong')
  for (let i = 0; i < result.forward.length; i += 2) {
    const name = result.forward[i] as string
    if (MANAGED_REQUEST_HEADERS.has(name) || managedAsRead(name)) throw new Error(`forwarded managed header ${JSON.stringify(name)}`)
  }
  const expected = expectedForward(raw)
  if (JSON.stringify(result.forward) !== JSON.stringify(expected)) {
    throw new Error(`forwarded ${JSON.stringify(result.forward)}, expected ${JSON.stringify(expected)}`)
  }
}

export const inspectedHeaders = fuzzTarget({
  name: 'headers.inspect',
  longRuns: 200_000,
  property: () =>
    fc.property(rawHeaders, (raw) => {
      checkInspected(raw, refusedWith(['bad_request'], () => inspectHeaders(raw)))
    }),
})

export const foldedNames = fuzzTarget({
  name: 'headers.fold',
  longRuns: 150_000,
  property: () =>
    fc.property(fc.oneof(respelled, anyText), (name) => {
      const lower = name.toLowerCase()
      const folded = foldHeaderName(lower)
      if (foldHeaderName(folded) !== folded) throw new Error('folding is not idempotent')
      if (folded.length !== lower.length) throw new Error('folding changed the length')
      const removed = MANAGED_REQUEST_HEADERS.has(lower) || isManagedVariant(lower)
      if (removed !== managedAsRead(lower)) throw new Error(`${JSON.stringify(name)}: removed ${removed}, but an upstream reads it as ${foldedAsUpstreams(lower)}`)
      // What the gateway writes itself is reserved from the config under every spelling.
      const writtenByGateway = ['x-request-id', 'traceparent', 'tracestate', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-bouncer-assertion', 'host', 'content-length', 'transfer-encoding', 'connection']
      if (writtenByGateway.includes(foldedAsUpstreams(lower)) && !isReservedForConfig(name)) throw new Error(`${name} may be configured but the gateway writes it`)
    }),
})

export const largeHeaders = fuzzTarget({
  name: 'headers.large',
  longRuns: 3_000,
  shortScale: 0.05,
  property: () =>
    fc.property(
      largeInput(fc.constantFrom('a', '_', '-', ',', ' ', 'x-bouncer-', 'X_Forwarded_', '0', '\t', 'chunked')),
      fc.constantFrom('name', 'value', 'connection', 'content-length', 'many'),
      (text, where) => {
        const raw =
          where === 'name' ? [text, 'v'] :
          where === 'value' ? ['x-custom', text] :
          where === 'connection' ? ['connection', text, 'x-custom', 'v'] :
          where === 'content-length' ? ['content-length', text] :
          Array.from({ length: 4_000 }, (_, i) => [`${text.slice(0, 8)}${i}`, 'v']).flat()
        withinCpu(LARGE_INPUT_CPU_MS, `inspectHeaders with a 64 KB ${where}`, () => refusedWith(['bad_request'], () => inspectHeaders(raw)))
        withinCpu(LARGE_INPUT_CPU_MS, 'isManagedVariant of a 64 KB name', () => isManagedVariant(text.toLowerCase()))
      },
    ),
})
