// A variant of a case, for the side-by-side runs of bench/ab.ts and bench/perf.ts (issue 15):
//
//   CASE                       the case as `npm run bench` runs it
//   CASE@--flag+--flag         with Node/V8 flags on the gateway's (or the minimal proxy's) command line (BENCH_NODE_FLAGS)
//   CASE~audit.max_batch=400   with a setting in its config, `~` again for more (BENCH_CONFIG_SET)
//   CASE^DIR                   the gateway of another checkout, its dist/ built (BENCH_GATEWAY_ROOT):
//                              `git worktree add DIR REV && (cd DIR && npm run build)`
//
// In that order when combined: `bouncer-full@--trace-gc~audit.flush_interval=20ms^/tmp/base`.
import { CASES, OPT_IN_CASES, type CaseContext, type RunningCase } from './cases.ts'
import { runLoad, type LoadOptions } from './lib/load.ts'

const WARMUP_SEC = 4

export interface StartedVariant {
  running: RunningCase
  pid: number
  /** What to load it with, but the duration. */
  load: Omit<LoadOptions, 'durationSec'>
}

/** Starts a variant (`extraFlags` go after its own: bench/perf.ts's --perf-prof) and warms it up with wrk. */
export async function startVariant(variant: string, ctx: CaseContext, extraFlags: string[] = []): Promise<StartedVariant> {
  const [run = '', root = ''] = variant.split('^')
  const [named = '', ...settings] = run.split('~')
  const [id, flags = ''] = named.split('@')
  const bench = [...CASES, ...OPT_IN_CASES].find((c) => c.id === id)
  if (!bench) throw new Error(`no case ${id}`)
  // startBouncer reads these: every gateway this variant starts gets them.
  process.env.BENCH_GATEWAY_ROOT = root
  process.env.BENCH_CONFIG_SET = settings.join(';')
  process.env.BENCH_NODE_FLAGS = [...flags.split('+'), ...extraFlags].filter(Boolean).join(' ')
  const running = await bench.start(ctx)
  const load = { url: running.url, headers: running.headers, tokensFile: running.tokensFile, connections: running.connections ?? 50 }
  try {
    await runLoad({ ...load, durationSec: WARMUP_SEC })
  } catch (err) {
    await running.stop()
    throw err
  }
  return { running, pid: running.measured.child.pid as number, load }
}
