// The load generator: wrk (C, from apt; installed when missing and possible), autocannon (npm)
// otherwise. Both run with the same settings and report the same numbers.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { aptInstall } from './apt.ts'
import { cpuMicros, LOAD_CORE, pinned } from './processes.ts'

export interface LoadOptions {
  url: string
  connections: number
  durationSec: number
  headers?: Record<string, string>
  /** A file of bearer tokens, one per line: each request sends the next one. */
  tokensFile?: string
}

const ROTATE_TOKENS = fileURLToPath(new URL('./rotate-tokens.lua', import.meta.url))

export interface LoadResult {
  tool: 'wrk' | 'autocannon'
  requests: number
  rps: number
  p50ms: number
  p99ms: number
  /** Response bytes per second. */
  bytesPerSec: number
  /** Non-2xx responses plus socket errors: a benchmark with any is not a clean run. */
  errors: number
}

/** BENCH_LOAD=autocannon forces the fallback (it is what a machine without wrk runs). */
export const HAS_WRK = process.env.BENCH_LOAD !== 'autocannon' && aptInstall('wrk', ['wrk'], () => spawnSync('wrk', ['--version']).error === undefined)

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  return HAS_WRK ? runWrk(options) : runAutocannon(options)
}

/** A run, with the CPU the measured process (its children included) spent per request. */
export type Measured = LoadResult & { cpuMicrosPerRequest: number }

export async function measureLoad(pid: number, options: LoadOptions): Promise<Measured> {
  const cpuBefore = cpuMicros(pid)
  const result = await runLoad(options)
  const cpu = cpuMicros(pid) - cpuBefore
  return { ...result, cpuMicrosPerRequest: result.requests > 0 ? cpu / result.requests : 0 }
}

/** The median of the repeats by req/s: what every table reports. */
export function medianRun<T extends { rps: number }>(runs: readonly T[]): T {
  return [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)] as T
}

async function runWrk(options: LoadOptions): Promise<LoadResult> {
  const args = ['-t1', `-c${options.connections}`, `-d${options.durationSec}s`, '--latency']
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`)
  if (options.tokensFile) args.push('-s', ROTATE_TOKENS)
  args.push(options.url)
  const [command, argv] = pinned(LOAD_CORE, 'wrk', args)
  const env = options.tokensFile ? { ...process.env, TOKENS_FILE: options.tokensFile } : process.env
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`wrk failed (${code}):\n${output}`)
  return parseWrk(output)
}

export function parseWrk(output: string): LoadResult {
  const number = (re: RegExp) => Number(re.exec(output)?.[1] ?? 0)
  const duration = (re: RegExp) => {
    const m = re.exec(output)
    if (!m) return 0
    const value = Number(m[1])
    return m[2] === 'us' ? value / 1000 : m[2] === 's' ? value * 1000 : value
  }
  const size = (re: RegExp) => {
    const m = re.exec(output)
    if (!m) return 0
    const scale = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] as 'B' | 'KB' | 'MB' | 'GB'] ?? 1
    return Number(m[1]) * scale
  }
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  const socketErrorCount = socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0
  return {
    tool: 'wrk',
    requests: number(/(\d+) requests in/),
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50ms: duration(/50%\s+([\d.]+)(us|ms|s)/),
    p99ms: duration(/99%\s+([\d.]+)(us|ms|s)/),
    bytesPerSec: size(/Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/),
    errors: number(/Non-2xx or 3xx responses: (\d+)/) + socketErrorCount,
  }
}

async function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  const tokens = options.tokensFile ? readFileSync(options.tokensFile, 'utf8').split('\n').filter(Boolean) : []
  let next = 0
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSec,
    headers: options.headers,
    requests: tokens.length === 0 ? undefined : [{
      setupRequest(request) {
        const token = tokens[next++ % tokens.length] as string
        return { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }
      },
    }],
  })
  return {
    tool: 'autocannon',
    requests: result.requests.total,
    rps: result.requests.average,
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    bytesPerSec: result.throughput.average,
    errors: result.non2xx + result.errors + result.timeouts,
  }
}
