// The console's benchmark (issue 20): on an audit log of 1,000,000 records (24 hours of ~12 req/s),
// how long the database takes for each aggregate the console asks for, how long the overview takes
// to first render in a real browser (Debian's chromium, headless), and what the page weighs.
//
//   node bench/console.ts [--records N] [--hours H] [--db PATH] [--screenshot FILE] [--runs N]
//
// --db keeps the generated log between runs (it is only written when the file does not exist).
// Results are printed and written to bench/results/console.json.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { stringify } from 'yaml'
import { auditCounts, auditDenials, auditOverview, bucketFor } from '../src/audit/aggregate.ts'
import { searchAudit, type AuditSource } from '../src/audit/search.ts'
import { startGateway } from '../src/instance/index.ts'
import { createLogger } from '../src/telemetry/index.ts'
import { writeAuditLog } from './lib/audit-log.ts'

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    hours: { type: 'string', default: '24' },
    db: { type: 'string' },
    screenshot: { type: 'string' },
    runs: { type: 'string', default: '3' },
  },
})
const RECORDS = Number(values.records)
const SPAN_MS = Number(values.hours) * 3_600_000
const RUNS = Number(values.runs)
const TOKEN = 'bench-console-admin-token-0123456789'

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await fn()
  return performance.now() - started
}
async function medianOf(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) times.push(await timed(fn))
  return Math.round(median(times))
}

const dir = await mkdtemp(join(tmpdir(), 'bouncer-bench-console-'))
const db = values.db ?? join(dir, 'audit.db')
const results: Record<string, unknown> = { records: RECORDS, hours: Number(values.hours), runs: RUNS, date: new Date().toISOString() }
try {
  if (!existsSync(db)) {
    console.log(`writing ${RECORDS.toLocaleString('en')} chained records over ${values.hours} h into ${db} …`)
    const ms = await timed(() => writeAuditLog(db, { records: RECORDS, spanMs: SPAN_MS }))
    console.log(`  written in ${(ms / 1000).toFixed(1)} s`)
  }
  const source: AuditSource = { type: 'sqlite', path: db }
  const now = Date.now()

  // The database's share: each query the console's pages make, median of RUNS.
  const queries: Record<string, number> = {}
  for (const [label, rangeMs] of [['15m', 15 * 60_000], ['1h', 3_600_000], ['24h', 86_400_000]] as const) {
    const q = { sinceMs: now - rangeMs, untilMs: now, bucketMs: bucketFor(rangeMs) }
    queries[`overview ${label}`] = await medianOf(() => auditOverview(source, q))
  }
  queries['denials 24h'] = await medianOf(() => auditDenials(source, { sinceMs: now - 86_400_000, untilMs: now }))
  queries['catalog counts 1h'] = await medianOf(() => auditCounts(source, now - 3_600_000))
  queries['requests page (50 newest)'] = await medianOf(() => searchAudit(source, { limit: 51 }))
  queries['requests page, route filter'] = await medianOf(() => searchAudit(source, { limit: 51, route: 'sales.daily' }))
  results.queries_ms = queries

  // The browser's share: a gateway reading that log, and the overview's first render.
  const config = {
    admin: { token: TOKEN },
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill') },
    telemetry: { log_level: 'silent' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'health', path: '/healthz', upstream: 'api', public: true }],
  }
  await writeFile(join(dir, 'bouncer.yaml'), stringify(config))
  const gateway = await startGateway({ configFile: join(dir, 'bouncer.yaml'), port: 0, adminPort: 0, logger: createLogger({ level: 'silent' }) })
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
  try {
    const render: Record<string, number> = {}
    const shell: number[] = []
    const marks: Record<string, number[]> = {}
    let weight: { files: number; transferred: number; decoded: number } | undefined
    for (const range of ['1h', '24h']) {
      const times: number[] = []
      for (let i = 0; i < RUNS; i++) {
        // A fresh context each time: nothing cached, the token already in the tab (as after sign-in).
        const context = await browser.newContext({ viewport: { width: 1400, height: 900 } })
        await context.addInitScript((token) => sessionStorage.setItem('bouncer.console.token', token), TOKEN)
        const page = await context.newPage()
        const started = performance.now()
        await page.goto(`${gateway.adminUrl}/#/overview`)
        if (range !== '1h') {
          await page.waitForSelector('[data-ready=true]', { timeout: 120_000 })
          const first = await page.locator('.totals small').innerText()
          const clicked = performance.now()
          await page.click(`.ranges button:text("${range}")`)
          await page.locator('.totals small').filter({ hasNotText: first }).waitFor({ timeout: 120_000 })
          times.push(performance.now() - clicked)
        } else {
          await page.waitForSelector('[data-ready=true] .chart canvas', { timeout: 120_000 })
          times.push(performance.now() - started)
          // The page's own clock: from navigation to the script having run (the console's shell, before any data).
          shell.push(await page.evaluate(() => {
            const [nav] = performance.getEntriesByType('navigation' as 'resource') as unknown as Array<{ domContentLoadedEventEnd: number }>
            return nav?.domContentLoadedEventEnd ?? 0
          }))
          // The console's own marks (page clock, from navigation): session known, data in, charts drawn.
          while (!(await page.evaluate(() => performance.getEntriesByName('bouncer:overview-drawn').length > 0))) await page.waitForTimeout(20)
          const found = await page.evaluate(() => performance.getEntriesByType('mark').map((m) => [m.name, m.startTime] as [string, number]))
          for (const [name, at] of found) (marks[name] ??= []).push(at)
          // The document and its files (not the API's answers), as the browser fetched them.
          weight ??= await page.evaluate(() => {
            type Entry = { name: string; transferSize: number; decodedBodySize: number }
            const entries = [...performance.getEntriesByType('navigation' as 'resource'), ...performance.getEntriesByType('resource')] as unknown as Entry[]
            const files = entries.filter((e) => !e.name.includes('/api/'))
            return { files: files.length, transferred: files.reduce((s, e) => s + e.transferSize, 0), decoded: files.reduce((s, e) => s + e.decodedBodySize, 0) }
          })
        }
        if (values.screenshot && i === 0 && range === '24h') {
          await mkdir(join(values.screenshot, '..'), { recursive: true })
          await page.screenshot({ path: values.screenshot })
        }
        await context.close()
      }
      render[range === '1h' ? 'first render, 1 h (the default)' : `switch to ${range} (all ${RECORDS.toLocaleString('en')} records)`] = Math.round(median(times))
    }
    render['of which: page and script loaded (DOMContentLoaded)'] = Math.round(median(shell))
    for (const [name, at] of Object.entries(marks)) render[`page clock: ${name.replace('bouncer:', '')}`] = Math.round(median(at))
    results.render_ms = render
    results.page_weight = weight
  } finally {
    await browser.close()
    await gateway.shutdown()
  }

  console.log(`\nThe console on ${RECORDS.toLocaleString('en')} audit records over ${values.hours} h (median of ${RUNS})`)
  console.log('\n| aggregate query (SQLite) | ms |\n|---|---:|')
  for (const [k, v] of Object.entries(queries)) console.log(`| ${k} | ${v} |`)
  console.log('\n| in the browser | ms |\n|---|---:|')
  for (const [k, v] of Object.entries(results.render_ms as Record<string, number>)) console.log(`| ${k} | ${v} |`)
  const w = results.page_weight as { files: number; transferred: number; decoded: number }
  console.log(`\npage weight: ${w.files} files, ${(w.transferred / 1024).toFixed(1)} KB transferred (gzip, headers included), ${(w.decoded / 1024).toFixed(1)} KB decoded`)
  await mkdir(new URL('results/', import.meta.url), { recursive: true })
  await writeFile(new URL('results/console.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
