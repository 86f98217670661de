// Datasets: rows per second streamed from PostgreSQL through the gateway as JSON, CSV and Arrow,
// against `psql -c "\copy (query) TO STDOUT WITH CSV"` of the same query (the target: CSV at 50% or
// more of psql's rows/s). The query generates its rows in PostgreSQL (generate_series), so both
// sides pay the same for producing them. `node bench/datasets.ts [--quick]` runs this alone.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { stringify } from 'yaml'
import { rssBytes, startProcess } from './lib/processes.ts'

const POSTGRES = process.env.BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const BIN = fileURLToPath(new URL('../bin/bouncer.js', import.meta.url))

const query = (rows: number) => `SELECT g AS id, md5(g::text) AS digest, repeat('x', 50) AS filler, g * 1.5 AS amount FROM generate_series(1, ${rows}) g`

export interface DatasetRow {
  how: string
  rows: number
  rowsPerSec: number
  mbPerSec: number
  /** The gateway's peak RSS during the runs (MB); null for psql. */
  peakRssMb: number | null
}

export interface DatasetBench {
  rows: number
  repeats: number
  results: DatasetRow[]
}

/** The median run's rows/s of `repeats` timed runs of `once`. */
async function timed(repeats: number, rows: number, run: () => Promise<number>): Promise<{ rowsPerSec: number; mbPerSec: number }> {
  const runs: Array<{ seconds: number; bytes: number }> = []
  for (let i = 0; i < repeats; i++) {
    const started = performance.now()
    const bytes = await run()
    runs.push({ seconds: (performance.now() - started) / 1000, bytes })
  }
  runs.sort((a, b) => a.seconds - b.seconds)
  const median = runs[Math.floor(runs.length / 2)] as { seconds: number; bytes: number }
  return { rowsPerSec: rows / median.seconds, mbPerSec: median.bytes / 2 ** 20 / median.seconds }
}

async function psqlCopy(rows: number): Promise<number> {
  const child = spawn('psql', [POSTGRES, '-X', '-q', '-c', `\\copy (${query(rows)}) TO STDOUT WITH CSV HEADER`], { stdio: ['ignore', 'pipe', 'inherit'] })
  let bytes = 0
  child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length))
  const [code] = await once(child, 'exit')
  if (code !== 0) throw new Error(`psql exited with ${String(code)}`)
  return bytes
}

export async function benchDatasets(options: { quick: boolean; repeats: number }): Promise<DatasetBench> {
  // Quick mode (the test suite runs it) only shows the section works: 50,000 rows, no warm-up.
  const rows = options.quick ? 50_000 : 1_000_000
  const repeats = options.quick ? 1 : Math.max(1, options.repeats)
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-bench-datasets-'))
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [], spill_dir: join(dir, 'spill') },
    datasources: [{ name: 'warehouse', type: 'postgres', url: POSTGRES, max_connections: 4 }],
    routes: [{ id: 'rows', methods: ['GET'], path: '/rows', public: true, dataset: { source: 'warehouse', sql: query(rows), timeout: '10m', max_rows: rows } }],
  }))
  const gateway = await startProcess(process.execPath, [BIN, 'serve', '--config', file], /gateway listening on (\S+)/)
  const url = gateway.match[1] as string
  const pid = gateway.child.pid as number
  let peak = 0
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50)
  try {
    const fetchAll = async (format: string): Promise<number> => {
      const res = await request(`${url}/rows?format=${format}`)
      if (res.statusCode !== 200) throw new Error(`the gateway answered ${res.statusCode}: ${await res.body.text()}`)
      let bytes = 0
      for await (const chunk of res.body) bytes += (chunk as Buffer).length
      return bytes
    }
    const results: DatasetRow[] = []
    results.push({ how: 'psql \\copy … TO STDOUT WITH CSV', rows, ...(await timed(repeats, rows, () => psqlCopy(rows))), peakRssMb: null })
    for (const format of ['csv', 'json', 'arrow']) {
      if (!options.quick) await fetchAll(format) // warm-up: the pool's connection, the code compiled
      peak = 0
      const measured = await timed(repeats, rows, () => fetchAll(format))
      results.push({ how: `gateway, ${format}`, rows, ...measured, peakRssMb: Math.round(peak / 2 ** 20) })
    }
    return { rows, repeats, results }
  } finally {
    clearInterval(sampler)
    await gateway.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

export function datasetsTable(bench: DatasetBench): string {
  const psql = bench.results[0]?.rowsPerSec ?? 0
  const lines = [
    `${bench.rows.toLocaleString('en')} rows of 4 columns (~100 bytes as CSV) from PostgreSQL; median of ${bench.repeats}; target: gateway CSV ≥ 0.50 × psql`,
    '',
    '| how | rows/s | MB/s | × psql | gateway peak RSS MB |',
    '|---|---:|---:|---:|---:|',
  ]
  for (const r of bench.results) {
    lines.push(`| ${r.how} | ${Math.round(r.rowsPerSec).toLocaleString('en')} | ${r.mbPerSec.toFixed(1)} | ${psql ? (r.rowsPerSec / psql).toFixed(2) : '–'} | ${r.peakRssMb ?? '–'} |`)
  }
  const csv = bench.results.find((r) => r.how === 'gateway, csv')
  if (csv && psql) {
    const ratio = csv.rowsPerSec / psql
    lines.push('', `Target, gateway CSV ≥ 0.50 × psql's rows/s: ${ratio >= 0.5 ? 'met' : '**missed**'} (${ratio.toFixed(2)})`)
  }
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick')
  benchDatasets({ quick, repeats: 3 }).then((bench) => console.log(datasetsTable(bench))).catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
