// `npm run bench -- --quick` must keep working: it is how every number in the README is made.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const RUN = fileURLToPath(new URL('../../bench/run.ts', import.meta.url))

describe('the benchmark, quick mode', () => {
  it('runs every case, sweep and table without errors and writes its results', { timeout: 300_000 }, async () => {
    const out = await mkdtemp(join(tmpdir(), 'bouncer-bench-'))
    // No apt-get from the test suite: without nginx its cases are reported as skipped.
    const child = spawn(process.execPath, [RUN, '--quick', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BENCH_NO_INSTALL: '1' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const [code] = (await once(child, 'exit')) as [number]
    expect(code, stderr).toBe(0)
    for (const title of ['| (a) upstream alone |', '| (b) nginx', '| (c) Bouncer, bare proxy |', '| (d) Bouncer, full pipeline', '| (e) fastify 5', '| (c) Bouncer, bare proxy, 1 MB |']) {
      expect(stdout).toContain(title)
    }
    expect(stdout).toMatch(/\| \(d\) full pipeline ≥ 90% of \(c\) bare proxy \| .* \| (met|\*\*missed\*\*) \|/)
    const results = JSON.parse(await readFile(join(out, 'quick.json'), 'utf8')) as {
      results: Array<{ id: string; median: { rps: number; errors: number }; skipped?: string }>
      sweeps: Array<{ sweep: string; value: number; rps: number; rssMb: number; errors: number }>
      router: Array<{ routes: number; matchNs: number }>
    }
    for (const result of results.results) {
      if (result.skipped) {
        expect(result.id, result.skipped).toMatch(/^nginx/) // only nginx may be missing
        continue
      }
      expect(result.median.rps, result.id).toBeGreaterThan(0)
      expect(result.median.errors, result.id).toBe(0)
    }
    expect(results.sweeps.map((p) => `${p.sweep}:${p.value}`)).toEqual(['routes:10', 'routes:1000', 'statements:10', 'statements:1000', 'principals:10', 'principals:1000'])
    for (const point of results.sweeps) {
      expect(point.rps, `${point.sweep} ${point.value}`).toBeGreaterThan(0)
      expect(point.errors).toBe(0)
      expect(point.rssMb).toBeGreaterThan(10)
    }
    expect(results.router.map((r) => r.routes)).toEqual([10, 1_000])
    await rm(out, { recursive: true, force: true })
  })
})
