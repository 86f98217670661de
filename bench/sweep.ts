// Scaling sweeps over the full pipeline (case d): routes 10 → 10,000 (200 statements), statements
// 10 → 10,000 (1,000 routes), and distinct principals 10 → 100,000, each with its own token
// (token-cache pressure: past the cache's 10,000 entries, every request is a cold verification).
// Throughput (the median of the repeats), p99 and the gateway's memory at each point.
import { join } from 'node:path'
import { startPipeline, type CaseContext } from './cases.ts'
import { measureLoad, medianRun, runLoad, type Measured } from './lib/load.ts'
import { PIPELINE_TRACEPARENT } from './lib/pipeline-config.ts'
import { rssBytes } from './lib/processes.ts'

export type SweepName = 'routes' | 'statements' | 'principals'

export interface SweepPoint {
  sweep: SweepName
  value: number
  rps: number
  p50ms: number
  p99ms: number
  errors: number
  cpuMicrosPerRequest: number
  /** Resident memory after the run, and its peak (VmHWM). */
  rssMb: number
  peakRssMb: number
}

export const SWEEP_POINTS: Record<SweepName, { full: number[]; quick: number[] }> = {
  routes: { full: [10, 100, 1_000, 10_000], quick: [10, 1_000] },
  statements: { full: [10, 100, 1_000, 10_000], quick: [10, 1_000] },
  principals: { full: [10, 1_000, 10_000, 100_000], quick: [10, 1_000] },
}

function peakRssBytes(pid: number): number {
  try {
    return rssBytes(pid, 'VmHWM')
  } catch {
    return 0
  }
}

export async function runSweep(sweep: SweepName, ctx: CaseContext, load: { connections: number; durationSec: number; warmupSec: number; repeats: number }): Promise<SweepPoint[]> {
  const points: SweepPoint[] = []
  const values = ctx.quick ? SWEEP_POINTS[sweep].quick : SWEEP_POINTS[sweep].full
  for (const value of values) {
    process.stderr.write(`  ${sweep} = ${value}…\n`)
    const shape = { routes: sweep === 'routes' ? value : 1_000, statements: sweep === 'statements' ? value : 200 }
    const gateway = await startPipeline(ctx, shape)
    try {
      const principals = sweep === 'principals' ? value : 1
      const tokens = await ctx.issuer.mint(principals, 'ES256')
      const tokensFile = join(ctx.dir, `sweep-${sweep}-${value}.txt`)
      await ctx.issuer.writeTokens(tokensFile, tokens)
      const options = { url: gateway.url, connections: load.connections, headers: { traceparent: PIPELINE_TRACEPARENT }, tokensFile }
      if (load.warmupSec > 0) await runLoad({ ...options, durationSec: load.warmupSec })
      const pid = gateway.child.pid as number
      const runs: Measured[] = []
      for (let i = 0; i < load.repeats; i++) runs.push(await measureLoad(pid, { ...options, durationSec: load.durationSec }))
      const result = medianRun(runs)
      points.push({
        sweep,
        value,
        rps: result.rps,
        p50ms: result.p50ms,
        p99ms: result.p99ms,
        errors: result.errors,
        cpuMicrosPerRequest: result.cpuMicrosPerRequest,
        rssMb: rssBytes(pid) / 2 ** 20,
        peakRssMb: peakRssBytes(pid) / 2 ** 20,
      })
    } finally {
      await gateway.stop()
    }
  }
  return points
}
