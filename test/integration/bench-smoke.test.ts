// `npm run bench -- --quick` must keep working: it is how every number in the README is made.
// The suite runs the part that changes with the gateway: a case of each kind that starts a Bouncer
// (each credential, the audit, a function, 1 MB, workers: their configs are the gateway's and rot
// with it), the principals sweep and the in-process tables, in CPU-bound quick mode. The variants
// of those cases (pinning, cold tokens, 1 worker), the reference servers (nginx, fastify, the
// minimal proxy), the other sweeps and the front door, datasets and MCP tables are left to
// `npm run bench -- --quick`, run before a note quotes a number: all of it was 178 s of a test
// worker at full CPU, three times the suite's next longest file (2026-12-05).
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const RUN = fileURLToPath(new URL('../../bench/run.ts', import.meta.url))

// Not bouncer-jwt-cached nor bouncer-bare-1mb: their gateways' configs are credential-assertion's
// and bare's (another token, another body size), and each case is ~5 s of both cores here.
const GATEWAY_CASES = ['upstream', 'bouncer-bare', 'bouncer-full', 'bouncer-api-key', 'bouncer-session', 'bouncer-credential-assertion', 'function-echo', 'bouncer-workers-2']

describe('the benchmark, quick mode', () => {
  it('runs every gateway case, a sweep and the in-process tables without errors and writes its results', { timeout: 300_000 }, async () => {
    const out = await mkdtemp(join(tmpdir(), 'bouncer-bench-'))
    // No apt-get from the test suite: without nginx its cases are reported as skipped.
    // No warm-up (--warmup 0): each case's second of it was ~20 s of the two cores' time over the run.
    // (With four files at once, the credential-assertion case's first requests once took the whole
    // measured second, and it counted no response: the suite runs three.)
    const child = spawn(process.execPath, [RUN, '--quick', '--warmup', '0', '--cases', GATEWAY_CASES.join(','), '--sweeps', 'principals', '--skip', 'front-door,datasets,mcp', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BENCH_NO_INSTALL: '1' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const [code] = (await once(child, 'exit')) as [number]
    expect(code, stderr).toBe(0)
    for (const title of ['| (a) upstream alone |', '| (c) Bouncer, bare proxy |', '| (d) Bouncer, full pipeline', '| function: echo handler through Bouncer']) {
      expect(stdout).toContain(title)
    }
    expect(stdout).toMatch(/\| \(d\) full pipeline ≥ 90% of \(c\) bare proxy \| .* \| (met|\*\*missed\*\*) \|/)
    const results = JSON.parse(await readFile(join(out, 'quick.json'), 'utf8')) as {
      results: Array<{ id: string; median: { rps: number; errors: number }; skipped?: string }>
      sweeps: Array<{ sweep: string; value: number; rps: number; rssMb: number; errors: number }>
      router: Array<{ routes: number; matchNs: number }>
    }
    expect(results.results.map((result) => result.id)).toEqual(GATEWAY_CASES)
    for (const result of results.results) {
      expect(result.skipped, result.id).toBeUndefined()
      expect(result.median.rps, result.id).toBeGreaterThan(0)
      expect(result.median.errors, result.id).toBe(0)
    }
    expect(results.sweeps.map((p) => `${p.sweep}:${p.value}`)).toEqual(['principals:10', 'principals:1000'])
    for (const point of results.sweeps) {
      expect(point.rps, `${point.sweep} ${point.value}`).toBeGreaterThan(0)
      expect(point.errors).toBe(0)
      expect(point.rssMb).toBeGreaterThan(10)
    }
    expect(results.router.map((r) => r.routes)).toEqual([10, 1_000])
    await rm(out, { recursive: true, force: true })
  })
})
