// How long the audit spill takes to replay into its sink once the sink is back: under
// `audit.on_spill_full: refuse` the gateway refuses requests until the spill is replayed and emptied
// (the file is truncated only at the end), so this is how long the refusal outlasts the outage.
//
//   node bench/spill-replay.ts [--mb 128] [--sink postgres|sqlite] [--url postgres://postgres@127.0.0.1:5432/test]
//
// Fills a spill file with `--mb` of records as the audit worker writes them (realistic fields,
// hash-chained), then replays it the way the sink runner's recovery does (read REPLAY_BATCH lines,
// write them, until the end) into a fresh PostgreSQL schema or SQLite file, and prints the rate and
// the time per GiB (the default audit.spill_max_bytes).
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { chain, GENESIS_HASH, type RecordInput } from '../src/audit/record.ts'
import { createPostgresSink } from '../src/audit/sinks/postgres.ts'
import type { AuditSink, StoredRow } from '../src/audit/sinks/sink.ts'
import { createSqliteSink } from '../src/audit/sinks/sqlite.ts'
import { SPILL_START, spillFor } from '../src/audit/spill.ts'

const { values: args } = parseArgs({ options: { mb: { type: 'string', default: '128' }, sink: { type: 'string', default: 'postgres' }, url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' }, batch: { type: 'string', default: '2000' } } })
const targetBytes = Number(args.mb) * 1_048_576
const REPLAY_BATCH = Number(args.batch) // sink-runner.ts reads 2,000 lines at a time
const SCHEMA = 'bench_spill_replay'
const CHAIN = '3b8a2f4e-0000-4000-8000-000000000001'

const record = (i: number): RecordInput => ({
  id: crypto.randomUUID(), time: new Date(Date.UTC(2026, 11, 5, 12) + i).toISOString(), request_id: crypto.randomUUID(), trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  method: 'GET', path: `/reports/daily/eu?page=${i % 50}`, route: 'reports.daily', status: i % 20 === 0 ? 403 : 200, decision: i % 20 === 0 ? 'deny' : 'allow',
  code: i % 20 === 0 ? 'policy_denied' : null, detail: null, statement: 'ReadReportsAndExports', issuer: 'https://idp.example.com/realms/corp',
  subject: `user-${i % 500}@example.com`, client_id: 'looker-studio', roles: ['analyst', 'reports-reader'], source_ip: '10.1.2.3',
  user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36', upstream: 'reports', upstream_status: 200,
  duration_ms: 4.25, bytes_in: 0, bytes_out: 2_345, limit: null,
})

const dir = mkdtempSync(join(tmpdir(), 'bouncer-spill-replay-'))
let sink: AuditSink | null = null
try {
  const spill = spillFor(dir, `${args.sink}:bench`, CHAIN)
  let prev = GENESIS_HASH
  let seq = 0
  const filling = performance.now()
  while (spill.size() < targetBytes) {
    const rows: StoredRow[] = []
    for (let i = 0; i < 2_000; i++) {
      const linked = chain(record(++seq), prev)
      prev = linked.hash
      rows.push({ chain: CHAIN, seq, record: linked })
    }
    await spill.append(rows, false)
  }
  const bytes = spill.size()
  console.log(`spill: ${(bytes / 1_048_576).toFixed(1)} MiB, ${seq} records (${Math.round(bytes / seq)} bytes each), filled in ${((performance.now() - filling) / 1000).toFixed(1)} s`)

  if (args.sink === 'postgres') {
    const admin = new pg.Client({ connectionString: args.url })
    await admin.connect()
    await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`)
    await admin.end()
    sink = createPostgresSink({ url: args.url, schema: SCHEMA })
  } else {
    sink = createSqliteSink(join(dir, 'audit.db'), { durable: false })
  }
  await sink.open()

  const load = loadavg()[0]?.toFixed(1)
  const started = performance.now()
  const cpu = process.cpuUsage()
  let cursor = SPILL_START
  let replayed = 0
  for (;;) {
    const { rows, next } = await spill.read(cursor, REPLAY_BATCH)
    if (rows.length > 0) await sink.write(rows)
    replayed += rows.length
    if (next.offset === cursor.offset) break
    cursor = next
  }
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  const perGiB = (seconds * 1_073_741_824) / bytes
  console.log(`replay into ${args.sink}: ${replayed} records in ${seconds.toFixed(1)} s = ${Math.round(replayed / seconds)} records/s, ${((bytes / 1_048_576) / seconds).toFixed(1)} MiB/s; this process's CPU ${((used.user + used.system) / 1e6).toFixed(1)} s; load average before ${load}`)
  console.log(`a full default spill (audit.spill_max_bytes 1 GiB) would take ~${Math.round(perGiB)} s to replay: how long refuse outlasts the sink's outage`)
} finally {
  await sink?.close()
  if (args.sink === 'postgres') {
    const admin = new pg.Client({ connectionString: args.url })
    await admin.connect()
    await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`)
    await admin.end()
  }
  rmSync(dir, { recursive: true, force: true })
}
