// `bouncer audit [filters]` and `bouncer audit verify`.
import type { Command } from 'commander'
import { formatDiagnostic, loadConfigFile, resolveConfigPath, type Config } from '../config/index.ts'
import { AuditQueryError, auditSourceOf, formatAuditTable, NoAuditLog, ordered, parseAuditQuery, searchAudit, verifyAudit, type AuditQuery, type AuditSource } from '../audit/index.ts'
import { printable } from '../text/index.ts'
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
        console.log(records.length === 0 ? 'no records match' : formatAuditTable(records))
      }
    })
  audit
    .command('verify')
    .description("check the audit log's hash chain: exit 0 with the count, or 1 naming the first record that does not match")
    .option('--config <path>', 'config file (default: $BOUNCER_CONFIG or ./bouncer.yaml)')
    .action(async (opts: { config?: string }, command: Command) => {
      const configPath = opts.config ?? (command.parent?.opts() as { config?: string }).config
      const result = await userFacing(verifyAudit(await sourceFrom(configPath)))
      if (result.ok) {
        console.log(`ok: ${result.checked} record${result.checked === 1 ? '' : 's'} in ${result.chains} chain${result.chains === 1 ? '' : 's'} verified`)
        return
      }
      const p = result.problem!
      console.log(printable(`audit log tampered: record ${p.id} (seq ${p.seq} of chain ${p.chain}, ${p.time}): ${p.reason}`))
      console.log(`${result.checked} records before it verified`)
      process.exitCode = 1
    })
}
