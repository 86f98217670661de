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
  it('runs every case without errors and writes its results', { timeout: 120_000 }, async () => {
    const out = await mkdtemp(join(tmpdir(), 'bouncer-bench-'))
    const child = spawn(process.execPath, [RUN, '--quick', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const [code] = (await once(child, 'exit')) as [number]
    expect(code, stderr).toBe(0)
    expect(stdout).toContain('| (a) upstream alone |')
    expect(stdout).toContain('| (c) Bouncer, bare proxy |')
    const results = JSON.parse(await readFile(join(out, 'quick.json'), 'utf8')) as {
      results: Array<{ id: string; median: { rps: number; errors: number } }>
      router: Array<{ routes: number; matchNs: number }>
    }
    for (const result of results.results) {
      expect(result.median.rps, result.id).toBeGreaterThan(0)
      expect(result.median.errors, result.id).toBe(0)
    }
    expect(results.router.map((r) => r.routes)).toEqual([10, 1_000])
    await rm(out, { recursive: true, force: true })
  })
})
