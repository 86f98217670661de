// `bouncer audit [filters]` and `bouncer audit verify`.
import type { Command } from 'commander'
import { ordered, type AuditRecord } from '../audit/record.ts'
import { AuditQueryError, auditSourceOf, parseAuditQuery, searchAudit, verifyAudit, type AuditQuery, type AuditSource } from '../audit/search.ts'
import { NoAuditLog } from '../audit/sinks/sqlite.ts'
import { printable } from '../text/index.ts'
import { configOption, loadCommandConfig } from './config.ts'
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
  const loaded = await loadCommandConfig(configPath)
  const source = auditSourceOf(loaded.config.audit)
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

/** A table for people: one line per request, the reason last. Cells are printable (subjects are the caller's to choose). */
export function formatTable(records: readonly AuditRecord[]): string {
  const rows = records.map((r) => [
    r.time.replace('T', ' ').replace('Z', ''),
    String(r.status),
    r.decision,
    `${r.method} ${r.path}`,
    r.route ?? '-',
    r.subject ?? '-',
    r.code ? `${r.code}${r.limit ? ` (${r.limit})` : r.statement ? ` (${r.statement})` : ''}` : r.statement ?? '',
  ].map(printable))
  const header = ['TIME (UTC)', 'STATUS', 'DECISION', 'REQUEST', 'ROUTE', 'SUBJECT', 'WHY']
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((row) => (row[i] as string).length))))
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.slice(0, widths[i]).padEnd(widths[i] as number))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
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
  const audit = configOption(program
    .command('audit')
    .description('search the audit log, newest first (a table, or NDJSON with --json)'))
    .option('--since <duration|time>', 'e.g. 1h, 30m, 2026-11-26T10:00:00Z')
    .option('--until <time>', 'e.g. 2026-11-26T11:00:00Z')
    .option('--principal <sub>', "the caller's subject")
    .option('--route <id>', 'route id')
    .option('--decision <decision>', 'allow, deny or error')
    .option('--status <n>', 'HTTP status')
    .option('--limit <n>', 'at most this many records', '50')
    .option('--json', 'one JSON record per line')
    .action(async (opts: SearchOptions) => {
      const query = queryFrom(opts) // a usage error is reported before the config is read
      const records = await userFacing(searchAudit(await sourceFrom(opts.config), query))
      if (opts.json) {
        for (const record of records) console.log(JSON.stringify(ordered(record)))
      } else {
        console.log(records.length === 0 ? 'no records match' : formatTable(records))
      }
    })
  configOption(audit
    .command('verify')
    .description("check the audit log's hash chain: exit 0 with the count, or 1 naming the first record that does not match"))
    .action(async (opts: { config?: string }, command: Command) => {
      const configPath = opts.config ?? (command.parent?.opts() as { config?: string }).config
      const result = await userFacing(verifyAudit(await sourceFrom(configPath)))
      if (result.ok) {
        console.log(`ok: ${result.checked} record${result.checked === 1 ? '' : 's'} in ${result.chains} chain${result.chains === 1 ? '' : 's'} verified`)
        return
      }
      const p = result.problem!
      // A finding, not a result: stderr (SPEC "Command line, added").
      console.error(printable(`audit log tampered: record ${p.id} (seq ${p.seq} of chain ${p.chain}, ${p.time}): ${p.reason}`))
      console.error(`${result.checked} records before it verified`)
      process.exitCode = 1
    })
}
