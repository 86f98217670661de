// What a bogus token costs (issue 22, point 3): CPU per token of hostile shapes, each as large as
// `server.max_token_bytes` allows (64 KB), next to a valid token verified cold and from the cache.
// None of them is signed, so each must be refused for the price of reading it: linear in its size,
// never a regex that backtracks or a parse whose cost grows with nesting. In process, no network.
//
//   node bench/hostile-tokens.ts [--quick]     this table alone (bench/run.ts runs it with the others)
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { GatewayError } from '../src/errors/index.ts'
import { verifierFor } from './identity.ts'

export interface HostileRow {
  case: string
  /** The token's length in characters. */
  chars: number
  /** What the verifier answered: the error code, or "verified". */
  answer: string
  cpuMicrosPerToken: number
  /** Wall time of the median token: how long one holds the event loop. */
  medianWallMicros: number
}

const ISSUER = 'https://idp.bench' // what verifierFor configures
const MAX_TOKEN_CHARS = 65_536 // the largest server.max_token_bytes the config accepts
const VARIANTS = 16

const b64 = (text: string) => Buffer.from(text).toString('base64url')
const randomSignature = () => randomBytes(64).toString('base64url')
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`

/** The largest `n` for which `build(n)` still fits in MAX_TOKEN_CHARS (every variant the same length). */
function fitted(build: (n: number) => string): string {
  let [fits, tooLong] = [0, MAX_TOKEN_CHARS]
  while (tooLong - fits > 1) {
    const n = Math.floor((fits + tooLong) / 2)
    if (build(n).length <= MAX_TOKEN_CHARS) fits = n
    else tooLong = n
  }
  return build(fits)
}

/** `header.payload.signature` with JSON texts written by hand (so they can be deeper than JSON.stringify goes). */
const unsigned = (header: string, payload: string) => `${b64(header)}.${b64(payload)}.${randomSignature()}`

const claims = (extra = '') => `{"iss":"${ISSUER}","aud":"api","sub":"svc-1","exp":${Math.floor(Date.now() / 1000) + 3_600}${extra}}`

/** The hostile shapes, each a function so every variant gets its own random signature. */
const SHAPES: Array<[string, () => string]> = [
  ['iss: 64 KB of slashes then "x" (drift bait, unsigned)', () => fitted((n) => unsigned('{"alg":"ES256","kid":"k"}', `{"iss":"${ISSUER}${'/'.repeat(n)}x"}`))],
  ['iss: 64 KB of slashes, alg none', () => fitted((n) => `${b64('{"alg":"none"}')}.${b64(`{"iss":"${'/'.repeat(n)}x"}`)}.`)],
  ['kid: 64 KB, configured iss, bad signature', () => fitted((n) => unsigned(`{"alg":"ES256","kid":"${'k'.repeat(n)}"}`, claims()))],
  ['typ: 64 KB, configured iss, bad signature', () => fitted((n) => unsigned(`{"alg":"ES256","kid":"k","typ":"${'a'.repeat(n)}"}`, claims()))],
  ['claims nested ~24,000 deep, bad signature', () => fitted((n) => unsigned('{"alg":"ES256","kid":"k"}', claims(`,"x":${nested(n)}`)))],
  ['alg nested ~24,000 deep, configured iss', () => fitted((n) => unsigned(`{"alg":${nested(n)},"kid":"k"}`, claims()))],
  ['32,768 segments', () => `${'a.'.repeat(MAX_TOKEN_CHARS / 2 - 1)}${randomSignature().slice(0, 2)}`],
  ['iss drifted by a trailing slash (normal size)', () => unsigned('{"alg":"ES256","kid":"k"}', `{"iss":"${ISSUER}/","exp":1}`)],
]

/** Runs `verify` over `headers` (cycling) for at least `budgetMs` and `minTokens`. */
async function measure(headers: string[], verify: (header: string) => Promise<unknown>, budgetMs: number, minTokens: number) {
  let answer = 'verified'
  const walls: number[] = []
  let count = 0
  const cpu = process.cpuUsage()
  const started = performance.now()
  while (count < minTokens || performance.now() - started < budgetMs) {
    const header = headers[count % headers.length] as string
    const t0 = performance.now()
    try {
      await verify(header)
      answer = 'verified'
    } catch (err) {
      answer = err instanceof GatewayError ? err.code : `500: ${(err as Error).name}: ${(err as Error).message.slice(0, 60)}`
    }
    walls.push(performance.now() - t0)
    count++
  }
  const used = process.cpuUsage(cpu)
  walls.sort((a, b) => a - b)
  return { answer, cpuMicrosPerToken: (used.user + used.system) / count, medianWallMicros: (walls[walls.length >> 1] as number) * 1000 }
}

// Flat strings, as the HTTP parser hands them over (a template literal would be a cons string).
const asHeader = (token: string) => Buffer.from(`Bearer ${token}`).toString()

export async function benchHostileTokens(quick: boolean): Promise<HostileRow[]> {
  const budgetMs = quick ? 50 : 1_000
  const minTokens = quick ? 3 : 20
  const { verifier, mint } = await verifierFor('ES256', { maxTokenBytes: MAX_TOKEN_CHARS })
  const verify = (header: string) => verifier.verify(header, '')
  const rows: HostileRow[] = []

  const fresh = await Promise.all(Array.from({ length: quick ? 300 : 3_000 }, (_, i) => mint(i)))
  await measure(fresh.slice(0, 100).map(asHeader), verify, 0, 100) // warm-up: JIT, key conversion
  // Cold: every token new to the cache (the run stops before it cycles back to a cached one).
  const cold = fresh.slice(100).map(asHeader)
  rows.push({ case: 'valid ES256 token, cold (signature + claims)', chars: fresh[0]!.length, ...(await measure(cold, verify, 0, cold.length)) })
  const cached = asHeader(fresh[0] as string)
  rows.push({ case: 'valid ES256 token, cached', chars: fresh[0]!.length, ...(await measure([cached], verify, budgetMs, 1_000)) })

  for (const [name, build] of SHAPES) {
    const headers = Array.from({ length: VARIANTS }, () => asHeader(build()))
    rows.push({ case: name, chars: headers[0]!.length - 'Bearer '.length, ...(await measure(headers, verify, budgetMs, minTokens)) })
  }
  return rows
}

export function hostileTable(rows: HostileRow[]): string {
  return [
    '| token (server.max_token_bytes 65536) | chars | answer | CPU µs per token | wall µs, median |',
    '|---|---:|---|---:|---:|',
    ...rows.map((r) => `| ${r.case} | ${r.chars} | ${r.answer} | ${r.cpuMicrosPerToken.toFixed(1)} | ${r.medianWallMicros.toFixed(1)} |`),
  ].join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  console.log(hostileTable(await benchHostileTokens(values.quick === true)))
}
