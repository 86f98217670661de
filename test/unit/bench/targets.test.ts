// The benchmark's verdicts: a target is met, missed (with the measured value), or not measured when
// its case did not run — never silently passed.
import { describe, expect, it } from 'vitest'
import type { CaseResult } from '../../../bench/results.ts'
import type { SweepPoint } from '../../../bench/sweep.ts'
import { evaluateTargets } from '../../../bench/targets.ts'

function result(id: string, rps: number, extra: { p99ms?: number; bytesPerSec?: number; skipped?: string } = {}): CaseResult {
  const median = { tool: 'wrk' as const, requests: rps * 10, rps, p50ms: 1, p99ms: extra.p99ms ?? 2, bytesPerSec: extra.bytesPerSec ?? 0, errors: 0, cpuMicrosPerRequest: 50 }
  return { id, title: id, group: id.endsWith('1mb') ? 'stream' : 'main', runs: [median], median, ...(extra.skipped ? { skipped: extra.skipped } : {}) }
}

function point(sweep: SweepPoint['sweep'], value: number, rps: number, peakRssMb = 150, cpu = 100): SweepPoint {
  return { sweep, value, rps, p50ms: 1, p99ms: 2, errors: 0, cpuMicrosPerRequest: cpu, rssMb: peakRssMb, peakRssMb }
}

const verdict = (rows: ReturnType<typeof evaluateTargets>, start: string) => rows.find((r) => r.target.startsWith(start))

describe('benchmark targets', () => {
  it('marks each target met or missed from the numbers of one run', () => {
    const rows = evaluateTargets({
      results: [
        result('bouncer-bare', 10_000), result('bouncer-full', 9_500, { p99ms: 6 }), result('nginx', 30_000), result('fastify', 9_000),
        result('bouncer-bare-1mb', 0, { bytesPerSec: 800 * 2 ** 20 }), result('nginx-1mb', 0, { bytesPerSec: 1_000 * 2 ** 20 }),
      ],
      sweeps: [point('routes', 10, 9_000), point('routes', 10_000, 8_500), point('statements', 10, 9_000), point('statements', 10_000, 7_000),
        point('principals', 10, 9_000, 150, 100), point('principals', 100_000, 3_600, 250, 250)],
      es256VerifyMicros: 120,
    })
    expect(verdict(rows, '(d) full pipeline ≥ 90%')).toMatchObject({ met: true, measured: expect.stringContaining('0.95') })
    expect(verdict(rows, '(c) bare proxy ≥ 0.45')).toMatchObject({ met: false })
    expect(verdict(rows, '(d) full pipeline ≥ (e)')).toMatchObject({ met: true })
    expect(verdict(rows, 'p99 of (d)')).toMatchObject({ met: false, measured: '6.00 ms' })
    expect(verdict(rows, '1 MB streaming')).toMatchObject({ met: true, measured: expect.stringContaining('80%') })
    expect(verdict(rows, 'routes 10 → 10000')).toMatchObject({ met: true })
    expect(verdict(rows, 'statements 10 → 10000')).toMatchObject({ met: false, measured: 'spread 22%' })
    // 9,000 × 100 / (100 + 120) = 4,091 predicted; 3,600 is 88%: worse than the verification cost explains.
    expect(verdict(rows, 'principals 100,000')).toMatchObject({ met: false, measured: expect.stringContaining('4091 predicted') })
    expect(verdict(rows, 'RSS under 200 MB')).toMatchObject({ met: false, measured: '250 MB peak' })
    expect(verdict(rows, '(d), audit worker on the other core')).toBeUndefined()
  })

  it('passes the cold-token sweep that follows the verification cost, and judges the spread audit placement too', () => {
    const rows = evaluateTargets({
      results: [result('bouncer-bare', 10_000), result('bouncer-full', 8_000), result('bouncer-full-spread', 9_200)],
      sweeps: [point('principals', 10, 9_000, 150, 100), point('principals', 100_000, 4_000, 190, 230)],
      es256VerifyMicros: 120,
    })
    expect(verdict(rows, '(d) full pipeline ≥ 90%')).toMatchObject({ met: false })
    expect(verdict(rows, '(d), audit worker on the other core')).toMatchObject({ met: true, measured: expect.stringContaining('0.92') })
    expect(verdict(rows, 'principals 100,000')).toMatchObject({ met: true, measured: expect.stringContaining('CPU 230 µs/req vs 220 predicted') })
    expect(verdict(rows, 'RSS under 200 MB')).toMatchObject({ met: true })
  })

  it('holds the API key case to 95% of the cached-JWT case', () => {
    const rows = evaluateTargets({ results: [result('bouncer-jwt-cached', 10_000), result('bouncer-api-key', 9_600)], sweeps: [], es256VerifyMicros: null })
    expect(verdict(rows, 'API key ≥ 95%')).toMatchObject({ met: true, measured: '0.96 (9600 / 10000 req/s; CPU 50.0 vs 50.0 µs/req)' })
    const slower = evaluateTargets({ results: [result('bouncer-jwt-cached', 10_000), result('bouncer-api-key', 9_000)], sweeps: [], es256VerifyMicros: null })
    expect(verdict(slower, 'API key ≥ 95%')).toMatchObject({ met: false })
    expect(verdict(evaluateTargets({ results: [], sweeps: [], es256VerifyMicros: null }), 'API key ≥ 95%')).toMatchObject({ met: null })
  })

  it('holds the session cookie case to 95% of the cached-JWT case', () => {
    const rows = evaluateTargets({ results: [result('bouncer-jwt-cached', 10_000), result('bouncer-session', 9_700)], sweeps: [], es256VerifyMicros: null })
    expect(verdict(rows, 'session cookie ≥ 95%')).toMatchObject({ met: true, measured: '0.97 (9700 / 10000 req/s; CPU 50.0 vs 50.0 µs/req)' })
    const slower = evaluateTargets({ results: [result('bouncer-jwt-cached', 10_000), result('bouncer-session', 9_000)], sweeps: [], es256VerifyMicros: null })
    expect(verdict(slower, 'session cookie ≥ 95%')).toMatchObject({ met: false })
    expect(verdict(evaluateTargets({ results: [], sweeps: [], es256VerifyMicros: null }), 'session cookie ≥ 95%')).toMatchObject({ met: null })
  })

  it('judges function invocations against the same handler behind node:http', () => {
    const rows = evaluateTargets({ results: [result('function-plain', 10_000), result('function-echo', 5_500)], sweeps: [], es256VerifyMicros: null })
    expect(verdict(rows, 'function invocations ≥ 60%')).toMatchObject({ met: false, measured: expect.stringContaining('0.55') })
    expect(verdict(evaluateTargets({ results: [result('function-plain', 10_000), result('function-echo', 6_500)], sweeps: [], es256VerifyMicros: null }), 'function invocations ≥ 60%')).toMatchObject({ met: true })
    expect(verdict(evaluateTargets({ results: [result('function-plain', 10_000)], sweeps: [], es256VerifyMicros: null }), 'function invocations ≥ 60%')).toMatchObject({ met: null })
  })

  it('says "not measured" for targets whose case did not run', () => {
    const rows = evaluateTargets({ results: [result('bouncer-bare', 10_000), result('nginx', 0, { skipped: 'nginx is not installed' })], sweeps: [], es256VerifyMicros: null })
    expect(verdict(rows, '(c) bare proxy ≥ 0.45')).toMatchObject({ met: null, measured: 'not measured' })
    expect(verdict(rows, 'p99 of (d)')).toMatchObject({ met: null })
    expect(verdict(rows, '1 MB streaming')).toMatchObject({ met: null })
  })

  it('judges the issue 15 targets: audit cost, ratios, tail, memory, records', () => {
    const withCpu = (r: CaseResult, cpu: number, p50ms = 1): CaseResult => ({ ...r, median: { ...r.median, cpuMicrosPerRequest: cpu, p50ms } })
    const rows = evaluateTargets({
      results: [
        withCpu(result('bouncer-bare', 10_000, { p99ms: 1.8 }), 50), withCpu(result('bouncer-audit', 9_000), 55),
        withCpu(result('bouncer-full', 7_900, { p99ms: 3 }), 70), result('bouncer-full-spread', 9_100), result('minimal', 10_400),
        { ...result('bouncer-audit', 9_000), id: 'bouncer-audit-spread', audit: { records: 99, responses: 100 } },
      ],
      sweeps: [point('principals', 10, 9_000), { ...point('principals', 100_000, 3_600, 160), rssMb: 140 }],
      es256VerifyMicros: null,
    })
    expect(verdict(rows, 'audit ≤ 6 µs')).toMatchObject({ met: true, measured: '5.0 µs (55.0 − 50.0)' })
    expect(verdict(rows, '(d) full pipeline ≥ 0.80')).toMatchObject({ met: false })
    expect(verdict(rows, '(d) spread')).toMatchObject({ met: true })
    expect(verdict(rows, 'p99 ≤ 2 × p50 for (c)')).toMatchObject({ met: true })
    expect(verdict(rows, 'p99 ≤ 2 × p50 for (d)')).toMatchObject({ met: false })
    expect(verdict(rows, 'RSS < 150 MB')).toMatchObject({ met: true, measured: '140 MB (peak 160 MB)' })
    expect(verdict(rows, '(c) bare proxy ≥ 0.95 × the minimal')).toMatchObject({ met: true })
    expect(verdict(rows, 'every audited request')).toMatchObject({ met: false })
  })
})
