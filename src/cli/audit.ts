// `bouncer audit [filters]` and `bouncer audit verify`.
import type { Command } from 'commander'
import { once } from 'node:events'
import { statSync } from 'node:fs'
import type { Config } from '../config/index.ts'
import {
  AuditQueryError, auditSourceOf, CHECKPOINT_KEY, CheckpointFileUnreadable, auditTableLines, cutFails, checkpointPathOf, checkpointVerificationKeys, NoAuditLog, ordered, PAGE, pagedRecords,
  parseAuditQuery, postgresUnreadable, searchAudit, verifyAudit, type Anchors, type AuditQuery, type AuditSource, type CutFinding, type FoundCheckpoint, type LogReading, type VerifyResult,
} from '../audit/index.ts'
import { SQLITE, sqliteCode } from '../collections/index.ts'
import { printable } from '../text/index.ts'
import { openSecretStore, SecretsError, type SecretStore } from '../secrets/index.ts'
import { configOption, loadCommandConfig } from './config.ts'
import { UserError } from './user-error.ts'

interface SearchOptions {
  config?: string
  since?: string
  until?: string
  principal?: string
  actor?: string
  route?: string
  decision?: string
  status?: string
  limit: string
  json?: boolean
}

async function configFrom(configPath: string | undefined): Promise<Config> {
  return (await loadCommandConfig(configPath)).config
}

function sourceOf(config: Config): AuditSource {
  const source = auditSourceOf(config.audit)
  if (!source) throw new UserError('no audit sink to read: configure an sqlite or postgres sink under audit.sinks')
  return source
}

/**
 * The checkpoint file and the keys to check it: the secrets store's (when it opens), and the key
 * file's. A key file this user may not read (an auditor's: the gateway's is mode 0600) is no key
 * here, said in the key problem: verify failed with "cannot read the checkpoint key file".
 */
function anchorsOf(config: Config): Anchors {
  const file = checkpointPathOf(config.audit)
  const keyFile = `${file}.key`
  let store: SecretStore | null = null
  let inStore = 'no secrets store is configured'
  let noFile = `there is no key file at ${keyFile}`
  const unreadable = (err: Error) => (noFile = err.message)
  try {
    if (config.secrets) {
      store = openSecretStore(config.secrets)
      inStore = `the ${store.kind} secrets store holds no ${CHECKPOINT_KEY}`
    }
    const keys = checkpointVerificationKeys(store, keyFile, unreadable)
    return { file, keys, keyProblem: keys.size > 0 ? null : `${inStore}, and ${noFile}`, retentionMs: config.audit.retention }
  } catch (err) {
    if (!(err instanceof SecretsError)) throw err
    const keys = checkpointVerificationKeys(null, keyFile, unreadable)
    return { file, keys, keyProblem: keys.size > 0 ? null : `the secrets store cannot be read (${err.message}), and ${noFile}`, retentionMs: config.audit.retention }
  } finally {
    store?.close()
  }
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

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

const at = (f: FoundCheckpoint) => `the checkpoint at ${f.checkpoint.time}`

/** The chains the command line and the admin API write (audit/change-log.ts): signed only where the writer can read the key, so never required. */
const CHANGE_CHAIN = /^(cli|admin):/

/** `verify --strict`: the gateways' signing interval, and now. */
export interface Strictness {
  checkpointIntervalMs: number
  now: number
}

/**
 * Under --strict, the unanchored chains no gateway vouches for: a gateway signs its chain every
 * checkpoint_interval and at shutdown, so a gateway's chain (not a `cli:`/`admin:` one) whose
 * newest record is older than two intervals and that has no checkpoint a known key signed was
 * written by no gateway whose key verify holds — fabricated (a probe: a whole new chain, its hashes
 * recomputed, passed verify with a note), or its gateway killed before its first checkpoint.
 */
function unvouched(result: VerifyResult, strict: Strictness | null): Set<string> {
  if (!strict) return new Set()
  // Two intervals either way: a record dated ahead (a skewed clock, or a fabricated chain dated to
  // pass as new) is no chain in its first minute either.
  const margin = 2 * strict.checkpointIntervalMs
  const fresh = (newest: string | null) => newest !== null && Math.abs(Date.parse(newest) - strict.now) <= margin
  return new Set(result.unanchored.filter(({ chain, newest }) => !CHANGE_CHAIN.test(chain) && !fresh(newest)).map(({ chain }) => chain))
}

/**
 * Under --strict, the retention cuts no key this config holds signed: unsigned (a gateway before
 * signed cuts left it, or someone wrote it by hand after deleting a chain's oldest records) or
 * signed by a key verify lacks. Without it they are notes: an upgrade does not fail verify.
 */
function unsignedCuts(result: VerifyResult, strict: Strictness | null): CutFinding[] {
  return strict ? result.cuts.filter((c) => !cutFails(c)) : []
}

/**
 * Under --strict, checkpoints no key here could check (verify run where the key is not): as with
 * another instance's key, plain verify passes and says so, and --strict, which must vouch for every
 * chain, fails.
 */
const uncheckedFails = (result: VerifyResult, strict: Strictness | null) => strict !== null && result.uncheckable !== null

/** Whether `bouncer audit verify` passes, with --strict or not. */
export function verifyPasses(result: VerifyResult, strict: Strictness | null): boolean {
  return result.ok && !uncheckedFails(result, strict) && unvouched(result, strict).size === 0 && unsignedCuts(result, strict).length === 0
}

const cutAt = (c: CutFinding) => `the retention cut${c.cut ? ` at ${c.cut.time}` : ''} of chain ${c.chain} (after record ${c.seq})`

/** A retention cut as a problem: what it is, and what it may mean. */
function cutProblemLine(c: CutFinding): string {
  const deleted = `record${c.seq === 1 ? '' : 's'} 1${c.seq === 1 ? '' : `–${c.seq}`}`
  switch (c.problem) {
    case 'bad signature': return `retention cut forged: ${cutAt(c)}: its signature does not verify, so ${deleted} may have been deleted outside retention`
    case 'early': return c.cut?.retention === undefined
      ? `audit records deleted early: ${cutAt(c)} deleted records as new as ${c.cut?.newest}, younger than audit.retention allows (a gateway ran with a shorter retention, or a wrong clock)`
      : `audit records deleted early: ${cutAt(c)} deleted records as new as ${c.cut.newest}, younger than the retention it was made under (${c.cut.retention / 1000} s) allows (a wrong clock)`
    case 'unsigned': return `retention cut not signed: ${cutAt(c)} has no signature, so ${deleted} may have been deleted outside retention (a cut left by a gateway before signed cuts is signed by the chain's next retention run)`
    case 'unknown key': return `retention cut not checked: ${cutAt(c)} is signed by a key this config does not hold`
  }
}

/** A retention cut as a note, when it fails only --strict. */
function cutNote(c: CutFinding): string {
  return c.problem === 'unsigned'
    ? `not signed: ${cutAt(c)} has no signature (left by a gateway before signed cuts, or written by hand): the chain's next retention run signs it; --strict fails until then`
    : `not checked: ${cutAt(c)} is signed by a key this config does not hold (another instance's?)`
}

/** A chain retention left no record of: which records went, and by which cut (its findings, if any, are said apart). */
function emptiedNote({ chain, seq, cut }: NonNullable<VerifyResult['emptied']>[number]): string {
  const records = seq === 1 ? 'record 1 was' : `records 1–${seq} were`
  return `cut by retention: chain ${chain} has no record left: ${records} deleted by ${cut ? `the retention cut at ${cut.time} (the newest of them from ${cut.newest})` : 'a retention cut that is not signed'}`
}

/** What `bouncer audit verify` prints: the verdict or each problem, then what is worth knowing. */
export function verifyReport(result: VerifyResult, strict: Strictness | null = null): string {
  const failing = unvouched(result, strict)
  const failingCuts = unsignedCuts(result, strict)
  const ok = verifyPasses(result, strict)
  // Checkpoints were found that no key here checks: a chain not anchored may have some.
  const someUnchecked = result.uncheckable !== null || result.unknownKeys > 0
  const problems = [
    ...result.problems.map((p) => `audit log tampered: record ${p.id} (seq ${p.seq} of chain ${p.chain}, ${p.time}): ${p.reason}`),
    ...result.truncations.map((t) => `audit log truncated: ${plural(t.missing, 'record')} missing after record ${t.end} of chain ${t.chain}: the log ends at count ${t.end} but ${at(t)} says ${t.checkpoint.count}`),
    ...result.rewritten.map((r) => `audit log rewritten: record ${r.checkpoint.count} of chain ${r.chain} (${r.id}) is not the record ${at(r)} signed (${r.checkpoint.id})`),
    ...result.forged.map((f) => `checkpoint forged: ${at(f)} for chain ${f.checkpoint.chain} (count ${f.checkpoint.count}) in ${f.source}: its signature does not verify`),
    ...(uncheckedFails(result, strict) ? [`checkpoints not checked: ${result.uncheckable}`] : []),
    ...result.cuts.filter((c) => cutFails(c) || failingCuts.includes(c)).map(cutProblemLine),
    ...result.unanchored.filter(({ chain }) => failing.has(chain)).map(({ chain, newest }) =>
      `audit chain not anchored: chain ${chain} (newest record ${newest ?? 'unreadable'}) has no checkpoint signed by a key this config holds, though a gateway signs its chain every checkpoint_interval: fabricated, or its gateway stopped before its first checkpoint`),
  ]
  const notes = [
    ...result.restarts.map((r) => `chain ${r.chain} restarted at ${r.time} (record ${r.id}): ${r.detail ?? 'no reason recorded'}`),
    ...result.losses.map((r) => `chain ${r.chain} lost records, said at ${r.time} (record ${r.id}): ${r.detail ?? 'no count recorded'}`),
    ...(result.emptied ?? []).map(emptiedNote),
    ...(result.anchored > 0 ? [`anchored: ${plural(result.anchored, 'chain')} reach${result.anchored === 1 ? 'es' : ''} ${result.anchored === 1 ? 'its' : 'their'} latest signed checkpoint`] : []),
    ...(result.uncheckable !== null && !uncheckedFails(result, strict) ? [`not checked: ${result.uncheckable}: records deleted from a chain's end would not show; --strict fails`] : []),
    ...result.unanchored.filter(({ chain }) => !failing.has(chain)).map(({ chain }) => `not anchored: chain ${chain} has no ${someUnchecked ? 'checkpoint signed by a key this config holds' : 'signed checkpoint'}, so records deleted from its end would not show`),
    ...result.cuts.filter((c) => !cutFails(c) && !failingCuts.includes(c)).map(cutNote),
    ...(result.unknownKeys > 0 ? [`not checked: ${plural(result.unknownKeys, 'checkpoint')} signed by keys this config does not hold (another instance's?)`] : []),
    ...(result.damagedCheckpointLines > 0 ? [`not checked: ${plural(result.damagedCheckpointLines, 'line')} of the checkpoint file ${result.damagedCheckpointLines === 1 ? 'is' : 'are'} not a checkpoint`] : []),
  ]
  const counted = `${plural(result.checked, 'record')} in ${plural(result.chains, 'chain')} verified`
  return (ok ? [`ok: ${counted}`, ...notes] : [...problems, ...notes, `${counted} up to the problems above`]).join('\n')
}

/**
 * Why SQLite could not read the log, as far as can be told: a directory in its place (SQLite says
 * "disk I/O error") or a file it could not open is no damaged log, though both were said to be (a probe).
 */
function unreadableBecause(path: string, err: unknown): string {
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) return 'it is a directory, not an audit log file'
  if (sqliteCode(err) === SQLITE.CANTOPEN) return 'it cannot be opened: may this user read it and its directory?'
  // A log in WAL mode is read through its -wal and -shm files, made beside it when no gateway holds
  // them open: an auditor who may read the file but not write its directory was told it was damaged.
  // The commands read such a log as it stands now (readingOf): this is said when that failed too.
  if (sqliteCode(err) === SQLITE.READONLY) return 'this user may not write its directory, where SQLite makes the -wal and -shm files it reads the log through while no gateway has them open'
  // Another process's exclusive lock (a backup, a sqlite3 shell in a transaction) was said to be damage (a probe).
  if (sqliteCode(err) === SQLITE.BUSY || sqliteCode(err) === SQLITE.LOCKED) return 'another process holds it locked: try again once it lets go'
  return 'damaged, or not an audit log?'
}

/**
 * How the commands read a SQLite log: where this user may not make or open its -wal and -shm files
 * (an auditor who may read the log but not write its folder), the file as it stands, said on
 * stderr. The commands failed there ("attempt to write a readonly database").
 */
function readingOf(source: AuditSource, verifying: boolean): LogReading {
  if (source.type !== 'sqlite') return {}
  const { path } = source
  let warned = false
  return {
    // Once, though a paged read opens the log for each page.
    asItStands: (why) => {
      if (warned) return
      warned = true
      console.error(printable(`warning: read the audit log ${path} as it stands, without SQLite's locks and its -wal and -shm files (${why}): records still in ${path}-wal, not yet checkpointed into the log, are not read${verifying ? ", and where a checkpoint counts them verify says them missing from their chain's end" : ''}`))
    },
  }
}

/**
 * One line to stdout, waiting while its reader is behind: a pipe takes Node's writes
 * asynchronously, and lines read faster than a slow reader took them filled the heap (a 64 MB heap
 * ran out at 50,000 records of 4 KB).
 */
async function printLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain')
}

/** Reading a log that is not there, a damaged SQLite file, or a database that does not answer, is the user's to fix. */
async function userFacing<T>(source: AuditSource, work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (err instanceof NoAuditLog) throw new UserError(err.message)
    // A directory or a file this user may not read at the checkpoint path was "internal error" (a probe).
    if (err instanceof CheckpointFileUnreadable) throw new UserError(err.message)
    const code = (err as { code?: string }).code
    // A server not there or gone, a read ended at read_timeout, a role or database the server does
    // not know: the config's or the database's to fix, which "internal error" blamed on the gateway (probes).
    const why = source.type === 'postgres' ? postgresUnreadable(source, err) : null
    if (why !== null) throw new UserError(`cannot read the audit log: ${why}`)
    // SQLite's words for a truncated copy, a file that is no database, a directory in its place:
    // the file's state, which "internal error" blamed on the gateway without naming the file.
    if (code === 'ERR_SQLITE_ERROR' && source.type === 'sqlite') {
      throw new UserError(`cannot read the audit log ${source.path}: ${(err as Error).message} (${unreadableBecause(source.path, err)})`)
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
    .option('--actor <sub>', 'the agent acting for the caller (token exchange)')
    .option('--route <id>', 'route id')
    .option('--decision <decision>', 'allow, deny or error')
    .option('--status <n>', 'HTTP status')
    .option('--limit <n>', 'at most this many records', '50')
    .option('--json', 'one JSON record per line')
    .action(async (opts: SearchOptions) => {
      const query = queryFrom(opts) // a usage error is reported before the config is read
      const source = sourceOf(await configFrom(opts.config))
      const reading = readingOf(source, false)
      // A page at a time, each line written as it is read: `--limit 1000000 --json > export.ndjson`
      // held every record before its first line (200 MB of the largest records: a 260 MB RSS), and
      // so did the table, for its column widths (they are the first page's now: table.ts).
      const records = pagedRecords((q: AuditQuery) => searchAudit(source, q, reading), query)
      await userFacing(source, (async () => {
        if (opts.json) {
          for await (const record of records) await printLine(JSON.stringify(ordered(record)))
          return
        }
        let none = true
        for await (const line of auditTableLines(records, PAGE)) {
          none = false
          await printLine(line)
        }
        if (none) await printLine('no records match')
      })())
    })
  configOption(audit
    .command('verify')
    .description("check the audit log's hash chain: exit 0 with the count, or 1 naming the first record that does not match"))
    .option('--strict', "also exit 1 for a gateway's chain that no checkpoint this config's keys check anchors, older than two checkpoint_intervals, for a retention cut no such key signed, and for checkpoints when this config holds no key at all")
    .action(async (opts: { config?: string; strict?: boolean }, command: Command) => {
      const configPath = opts.config ?? (command.parent?.opts() as { config?: string }).config
      const config = await configFrom(configPath)
      const source = sourceOf(config)
      const result = await userFacing(source, verifyAudit(source, anchorsOf(config), readingOf(source, true)))
      const strict = opts.strict ? { checkpointIntervalMs: config.audit.checkpoint_interval, now: Date.now() } : null
      const report = verifyReport(result, strict)
      const ok = verifyPasses(result, strict)
      const printed = report.split('\n').map(printable).join('\n')
      // A failure is a finding, not a result: stderr (SPEC "Command line, added").
      if (ok) console.log(printed)
      else console.error(printed)
      if (!ok) process.exitCode = 1
    })
}
