// Router cost: loading N routes (parse + validate + compile) and matching one request, for our
// segment trie and for find-my-way, at 10 → 10,000 routes. Run by bench/run.ts.
import FindMyWay from 'find-my-way'
import { stringify } from 'yaml'
import { loadConfigText } from '../src/config/index.ts'
import { compileRuntime, createRuntimeDeps } from '../src/gateway/compile.ts'
import { parseTarget } from '../src/http/index.ts'
import { createLogger } from '../src/telemetry/logger.ts'

function configWith(routes: number): string {
  return stringify({
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: Array.from({ length: routes }, (_, i) => ({
      id: `svc${i % 100}.r${i}`,
      methods: ['GET', 'HEAD'],
      path: `/svc${i % 100}/v${i}/:id/items/*`,
      upstream: 'api',
      public: true,
    })),
  })
}

function timeMs(fn: () => void, repeats = 5): number {
  const times: number[] = []
  for (let i = 0; i < repeats; i++) {
    const started = performance.now()
    fn()
    times.push(performance.now() - started)
  }
  return times.sort((a, b) => a - b)[Math.floor(repeats / 2)] as number
}

function nsPerOp(fn: () => unknown, iterations: number, warmup: number): number {
  for (let i = 0; i < warmup; i++) fn()
  const started = performance.now()
  for (let i = 0; i < iterations; i++) fn()
  return ((performance.now() - started) * 1e6) / iterations
}

export interface RouterRow {
  routes: number
  loadMs: number
  matchNs: number
  missNs: number
  findMyWayNs: number
}

/** `quick`: a tenth of the iterations and one load (the suite's smoke run checks it works, and measures nothing). */
export function benchRouter(sizes = [10, 100, 1_000, 10_000], quick = false): RouterRow[] {
  const iterations = quick ? 100_000 : 1_000_000
  const warmup = quick ? 10_000 : 100_000
  const rows: RouterRow[] = []
  for (const size of sizes) {
    const text = configWith(size)
    const deps = createRuntimeDeps(createLogger({ level: 'silent' }), { offline: true })
    let runtime: ReturnType<typeof compileRuntime> | undefined
    const loadMs = timeMs(() => {
      const loaded = loadConfigText(text, 'bench.yaml')
      if (!loaded.config) throw new Error('bench config invalid')
      runtime = compileRuntime(loaded.config, deps)
    }, quick ? 1 : 5)
    const router = runtime!.router
    const last = size - 1
    const hit = parseTarget(`/svc${last % 100}/v${last}/42/items/a/b`, undefined)
    const miss = parseTarget('/svc1/nope/42/items', undefined)
    const fmw = FindMyWay()
    for (let i = 0; i < size; i++) fmw.on(['GET', 'HEAD'], `/svc${i % 100}/v${i}/:id/items/*`, () => {})
    const fmwPath = `/svc${last % 100}/v${last}/42/items/a/b`
    rows.push({
      routes: size,
      loadMs,
      matchNs: nsPerOp(() => router.match('GET', hit), iterations, warmup),
      missNs: nsPerOp(() => {
        try {
          router.match('GET', miss)
        } catch {
          // 404 is the point
        }
      }, iterations / 5, warmup),
      findMyWayNs: nsPerOp(() => fmw.find('GET', fmwPath), iterations, warmup),
    })
    void deps.closeAll()
  }
  return rows
}

