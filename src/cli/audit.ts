// `bouncer audit [filters]` and `bouncer audit verify`.
import type { Command } from 'commander'
import { formatDiagnostic, loadConfigFile, resolveConfigPath, type Config } from '../config/index.ts'
import { ordered, type AuditRecord } from '../audit/record.ts'
import { AuditQueryError, auditSourceOf, parseAuditQuery, searchAudit, type AuditQuery, type AuditSource } from '../audit/search.ts'
import { verifyAudit, type VerifyResult } from '../audit/verify.ts'
import { NoAuditLog } from '../audit/sinks/sqlite.ts'
import { UserError } from './user-error.ts'

interface SearchOptions {
  config?: string
  since?: string
  until?: string
  principal?: string
  route?: string
  decision?: string
  status?: string
  limit: string
  json?: boolean
}

async function sourceFrom(configPath: string | undefined): Promise<AuditSource> {
  const file = resolveConfigPath(configPath)
  const loaded = await loadConfigFile(file)
  if (!loaded.config) {
    for (const d of loaded.diagnostics) if (d.severity === 'error') console.error(formatDiagnostic(file, d))
    throw new UserError(`${file} is not valid (see bouncer check)`)
  }
  const source = auditSourceOf(loaded.config.audit as Config['audit'])
  if (!source) throw new UserError('no audit sink to read: configure an sqlite or postgres sink under audit.sinks')
  return source
}

function queryFrom(options: SearchOptions): AuditQuery {
  try {
    const { config: _config, json: _json, ...filters } = options
    return parseAuditQuery(filters)
  } catch (err) {
    if (err instanceof AuditQueryError) throw new UserError(`--${err.message}`, 2)
    throw err
  }
}

/** A table for people: one line per request, the reason last. */
export function formatTable(records: readonly AuditRecord[]): string {
  const rows = records.map((r) => [
    r.time.replace('T', ' ').replace('Z', ''),
    String(r.status),
    r.decision,
    `${r.method} ${r.path}`,
    r.route ?? '-',
    r.subject ?? '-',
    r.code ? `${r.code}${r.limit ? ` (${r.limit})` : r.statement ? ` (${r.statement})` : ''}` : r.statement ?? '',
  ])
  const header = ['TIME (UTC)', 'STATUS', 'DECISION', 'REQUEST', 'ROUTE', 'SUBJECT', 'WHY']
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((row) => (row[i] as string).length))))
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.slice(0, widths[i]).padEnd(widths[i] as number))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/** What `bouncer audit verify` prints: each problem, then what is worth knowing, then the count. */
export function verifyReport(result: VerifyResult): string {
  const counted = `${plural(result.checked, 'record')} in ${plural(result.chains, 'chain')} verified`
  const problems = result.problems.map((p) => `audit log tampered: record ${p.id} (seq ${p.seq} of chain ${p.chain}, ${p.time}): ${p.reason}`)
  const notes = result.restarts.map((r) => `chain ${r.chain} restarted at ${r.time} (record ${r.id}): ${r.detail ?? 'no reason recorded'}`)
  return (result.ok ? [`ok: ${counted}`, ...notes] : [...problems, ...notes, `${counted} up to the problems above`]).join('\n')
}

/** Reading a log that is not there, or a database that does not answer, is the user's to fix. */
async function userFacing<T>(work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (err instanceof NoAuditLog) throw new UserError(err.message)
    const code = (err as { code?: string }).code
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === '3D000' || code === '42P01') {
      throw new UserError(`cannot read the audit log: ${(err as Error).message}`)
    }
    throw err
  }
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description('search the audit log, newest first (a table, or NDJSON with --json)')
    .option('--config <path>', 'config file (default: $BOUNCER_CONFIG or ./bouncer.yaml)')
    .option('--since <duration|time>', 'e.g. 1h, 30m, 2026-11-26T10:00:00Z')
    .option('--until <time>', 'e.g. 2026-11-26T11:00:00Z')
    .option('--principal <sub>', "the caller's subject")
    .option('--route <id>', 'route id')
    .option('--decision <decision>', 'allow, deny or error')
    .option('--status <n>', 'HTTP status')
    .option('--limit <n>', 'at most this many records', '50')
    .option('--json', 'one JSON record per line')
    .action(async (opts: SearchOptions) => {
      const records = await userFacing(searchAudit(await sourceFrom(opts.config), queryFrom(opts)))
      if (opts.json) {
        for (const record of records) console.log(JSON.stringify(ordered(record)))
      } else {
        console.log(records.length === 0 ? 'no records match' : formatTable(records))
      }
    })
  audit
    .command('verify')
    .description("check the audit log's hash chain: exit 0 with the count, or 1 naming the first record that does not match")
    .option('--config <path>', 'config file (default: $BOUNCER_CONFIG or ./bouncer.yaml)')
    .action(async (opts: { config?: string }, command: Command) => {
      const configPath = opts.config ?? (command.parent?.opts() as { config?: string }).config
      const result = await userFacing(verifyAudit(await sourceFrom(configPath)))
      console.log(verifyReport(result))
      if (!result.ok) process.exitCode = 1
    })
}
