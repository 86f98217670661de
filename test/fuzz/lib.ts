// What every fuzz target shares: the target's shape, the "only our own errors escape" check, the
// per-input CPU bound for large inputs, and the generators of large inputs.
import fc from 'fast-check'
import { GatewayError, type ErrorCode } from '../../src/errors/index.ts'

/** One fuzz target: a property and the shrunk counterexamples of bugs it found (run every time). */
export interface FuzzTarget {
  name: string
  /** Inputs in the long run (`npm run fuzz`); `npm test` runs FUZZ_RUNS scaled by `shortScale`. */
  longRuns: number
  /** Targets whose inputs are 64 KB each run fewer of them in `npm test`. */
  shortScale: number
  /** Keys, key sets, valid configs: made once, before the first input. */
  check(parameters: CheckParameters): Promise<fc.RunDetails<unknown>>
}

export interface CheckParameters {
  numRuns: number
  seed?: number
  /** fast-check's replay path: with `seed`, runs the recorded counterexample again. */
  path?: string
}

/**
 * Builds a target from a property maker. `examples` are regression inputs: shrunk counterexamples
 * of bugs the fuzzer found, kept so a regression fails on every run, short or long.
 */
export function fuzzTarget<Ts extends [unknown, ...unknown[]]>(definition: {
  name: string
  longRuns: number
  shortScale?: number
  property: () => Promise<fc.IPropertyWithHooks<Ts> | fc.IAsyncPropertyWithHooks<Ts>> | fc.IPropertyWithHooks<Ts> | fc.IAsyncPropertyWithHooks<Ts>
  examples?: Ts[]
}): FuzzTarget {
  let property: Promise<fc.IPropertyWithHooks<Ts> | fc.IAsyncPropertyWithHooks<Ts>> | undefined
  return {
    name: definition.name,
    longRuns: definition.longRuns,
    shortScale: definition.shortScale ?? 1,
    async check({ numRuns, seed, path }) {
      property ??= Promise.resolve(definition.property())
      const built = await property
      const parameters: fc.Parameters<Ts> = { numRuns, examples: definition.examples ?? [] }
      if (seed !== undefined) parameters.seed = seed
      if (path !== undefined) {
        parameters.path = path
        parameters.endOnFailure = true
      }
      return (await fc.check(built as fc.IAsyncPropertyWithHooks<Ts>, parameters)) as fc.RunDetails<unknown>
    },
  }
}

/** Runs `fn`; a GatewayError with one of `codes` is an answer, anything else thrown is a bug. */
export function refusedWith<T>(codes: readonly ErrorCode[], fn: () => T): T | GatewayError {
  try {
    return fn()
  } catch (err) {
    return expectGatewayError(err, codes)
  }
}

export function expectGatewayError(err: unknown, codes: readonly ErrorCode[]): GatewayError {
  if (!(err instanceof GatewayError)) throw new Error(`not a GatewayError escaped: ${String(err)}`, { cause: err })
  if (!codes.includes(err.code)) throw new Error(`unexpected code ${err.code} (expected ${codes.join(' or ')}): ${err.detail}`)
  return err
}

/**
 * A large input must cost at most this much CPU. Linear work on 64 KB takes well under 10 ms
 * here; a quadratic regex or loop takes seconds. CPU time (not wall time) so that other processes
 * on the shared machine do not count; loose, so a GC pause does not either.
 */
export const LARGE_INPUT_CPU_MS = 500

export const LARGE_INPUT_BYTES = 65_536

/**
 * Runs `fn` and fails when it used more than `limitMs` of this thread's CPU, whether it returned or
 * threw. `fn` is synchronous, so the thread's CPU is what the input cost. The process's CPU also
 * counted the test process's other threads: a 64 KB config that loads in ~250 ms of this thread's CPU
 * was reported at 3,250 ms in CI, where the fuzz file shares its process with integration files that
 * ran before it (isolate: false); the message gives both, for the next such report.
 */
export function withinCpu<T>(limitMs: number, what: string, fn: () => T): T {
  const before = process.threadCpuUsage()
  const processBefore = process.cpuUsage()
  let outcome: { value: T } | { error: unknown }
  try {
    outcome = { value: fn() }
  } catch (error) {
    outcome = { error }
  }
  const ms = cpuMs(process.threadCpuUsage(before))
  if (ms > limitMs) {
    const processMs = cpuMs(process.cpuUsage(processBefore))
    throw new Error(`${what} took ${ms.toFixed(0)} ms of CPU (bound ${limitMs} ms; the process ${processMs.toFixed(0)} ms): not linear in its input`)
  }
  if ('error' in outcome) throw outcome.error
  return outcome.value
}

/** Milliseconds of CPU in a `cpuUsage()` difference. */
export function cpuMs(used: NodeJS.CpuUsage): number {
  return (used.user + used.system) / 1000
}

/** A C0 control character or DEL. */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

/**
 * A large input in the shape that makes backtracking regexes and quadratic loops show: a prefix,
 * one short unit repeated up to `bytes`, and a tail that makes the whole fail (or not) at the end.
 */
export function largeInput(pieces: fc.Arbitrary<string>, bytes = LARGE_INPUT_BYTES): fc.Arbitrary<string> {
  return fc
    .tuple(fc.array(pieces, { maxLength: 3 }), fc.array(pieces, { minLength: 1, maxLength: 4 }), fc.array(pieces, { maxLength: 3 }))
    .map(([prefix, unit, tail]) => {
      const head = prefix.join('')
      const end = tail.join('')
      const repeated = unit.join('') || 'a'
      const times = Math.max(1, Math.floor((bytes - head.length - end.length) / repeated.length))
      return `${head}${repeated.repeat(times)}${end}`
    })
}

/** Strings of the given characters (a small alphabet makes the interesting collisions likely). */
export function stringOf(chars: string, maxLength = 16): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...chars), maxLength })
}

/** A lone UTF-16 surrogate: valid in a JavaScript string, in no UTF-8 text. */
export const loneSurrogate: fc.Arbitrary<string> = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c))

/** Any code unit at all: ASCII and control characters often, the rest of Unicode and lone surrogates sometimes. */
export const anyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary-ascii' }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary' }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), loneSurrogate) }) },
)

/** A counterexample as fast-check prints it, with the middle of a long one left out. */
export function describeCounterexample(details: fc.RunDetails<unknown>, maxChars = 1_500): string {
  const text = fc.stringify(details.counterexample)
  const shown = text.length <= maxChars ? text : `${text.slice(0, maxChars / 2)} … (${text.length - maxChars} characters left out) … ${text.slice(-maxChars / 2)}`
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
  return `counterexample: ${shown}\nerror: ${error.length <= maxChars ? error : `${error.slice(0, maxChars)} …`}\nseed ${details.seed}, path ${details.counterexamplePath} (shrunk ${details.numShrinks} times)`
}
