// The audit log's integrity against real faults: a worker that dies, a damaged spill file, a chain
// head that cannot be read, and the newest records deleted (signed checkpoints).
import { spawnSync } from 'node:child_process'
import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { closeSync, constants, existsSync, openSync } from 'node:fs'
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { GENESIS_HASH, hashOf, type AuditRecord } from '../../src/audit/record.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { signCut, type RetentionCut } from '../../src/audit/checkpoint.ts'
import { checkpointVerificationKeys } from '../../src/audit/checkpoint-key.ts'
import { verifyAudit } from '../../src/audit/verify.ts'
import type { AuditSource } from '../../src/audit/search.ts'
import { verifyPasses, verifyReport } from '../../src/cli/audit.ts'
import { parseDuration } from '../../src/config/values.ts'

let dir: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-integrity-'))
  upstream = await startUpstream((_req, res) => {
    res.end('ok')
  })
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

const routes = () => ({ upstreams: [{ name: 'api', url: upstream.url }], routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }] })

async function get(url: string): Promise<number> {
  const res = await request(url)
  await res.body.dump()
  return res.statusCode
}

/** One counter or gauge from GET /metrics (0 when it has no sample yet). */
async function metric(adminUrl: string, name: string): Promise<number> {
  const res = await request(`${adminUrl}/metrics`)
  const text = await res.body.text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line ? Number(line.slice(name.length + 1)) : 0
}

function rowsIn(path: string): number {
  try {
    const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
    try {
      return (db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n
    } finally {
      db.close()
    }
  } catch {
    return 0
  }
}

describe('the audit counters across a worker restart', () => {
  it('add the new worker\'s counts to the old one\'s: /metrics never goes back or stands still', async () => {
    const own = await mkdtemp(join(dir, 'restart-'))
    const db = join(own, 'audit.db')
    const spill = join(own, 'spill')
    const gw = await startTestGateway({ audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: spill, flush_interval: '10ms' }, ...routes() })
    const seen: number[] = []
    const written = async () => {
      const value = await metric(gw.adminUrl, 'bouncer_audit_written_total')
      seen.push(value)
      return value
    }
    try {
      for (let i = 0; i < 5; i++) expect(await get(`${gw.url}/before/${i}`)).toBe(200)
      await waitFor(async () => (await written()) === 5, 'five records written')

      // A real fault kills the worker: it cannot save the chain's state (a directory stands where
      // the state file's temporary copy goes), and the gateway starts a new one.
      await mkdir(join(spill, 'chain.json.tmp'))
      expect(await get(`${gw.url}/lost`)).toBe(200)
      await waitFor(() => gw.logs.some((l) => l.includes('the audit worker stopped: restarting it')), 'the worker to stop')
      await rm(join(spill, 'chain.json.tmp'), { recursive: true })
      await waitFor(async () => (await metric(gw.adminUrl, 'bouncer_audit_dropped_total')) === 1, 'the lost record counted')

      for (let i = 0; i < 3; i++) expect(await get(`${gw.url}/after/${i}`)).toBe(200)
      await waitFor(() => rowsIn(db) === 8, 'eight records in SQLite')
      await waitFor(async () => (await written()) === 8, 'the counter to reach 8 (5 before the restart, 3 after)')
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1] as number)
    } finally {
      await gw.close()
    }
  })
})

describe('replay of a damaged spill file', () => {
  it('moves garbage, a JSON line that is not a record and a cut-short last line to quarantine, logs and counts them, and replays the rest', async () => {
    const own = await mkdtemp(join(dir, 'spill-'))
    // The SQLite sink cannot open while a file stands where its directory goes: records spill.
    const store = join(own, 'store')
    await writeFile(store, 'not a directory')
    const db = join(store, 'audit.db')
    const spillDir = join(own, 'spill')
    const audit = { sinks: [{ type: 'sqlite', path: db }], spill_dir: spillDir, flush_interval: '10ms' }
    await run(audit, ['/a', '/b', '/c', '/d'])
    const [name] = (await readdir(spillDir)).filter((f) => f.endsWith('.ndjson'))
    const spillFile = join(spillDir, name as string)
    const lines = (await readFile(spillFile, 'utf8')).trim().split('\n')
    expect(lines).toHaveLength(4)

    // The disk damages it: garbage, a line that is JSON but no record, a last write cut short.
    const damaged = [lines[0], 'garbage \u0007\u0007', lines[1], '{"seq":99,"record":{"hello":"world"}}', lines[2], lines[3], (lines[0] as string).slice(0, 50)]
    await writeFile(spillFile, damaged.join('\n'))
    await rm(store)
    await mkdir(store)

    const gw = await startTestGateway({ audit, ...routes() })
    try {
      await waitFor(() => rowsIn(db) === 4, 'the four records replayed')
      await waitFor(async () => (await metric(gw.adminUrl, 'bouncer_audit_quarantined_total')) === 3, 'three lines counted as quarantined')
      const logged = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => String(l.msg).includes('moved to quarantine'))
      expect(logged.map((l) => [l.line, l.offset])).toEqual([
        [7, Buffer.byteLength(damaged.slice(0, 6).join('\n')) + 1],
        [2, Buffer.byteLength(`${lines[0]}\n`)],
        [4, Buffer.byteLength(damaged.slice(0, 3).join('\n')) + 1],
      ])
      expect(logged[1]).toMatchObject({ level: 'error', spill: spillFile, quarantine: `${spillFile}.quarantine`, reason: expect.stringMatching(/^not JSON/) })
      // No chain of its own, as the first wave wrote lines: it takes the directory's, and is refused for its record.
      expect(logged[2]?.reason).toMatch(/^record\.\w+ is missing or not a valid/)
      const quarantine = (await readFile(`${spillFile}.quarantine`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { line: number; text: string })
      expect(quarantine.map((q) => [q.line, q.text])).toEqual([[7, damaged[6]], [2, damaged[1]], [4, damaged[3]]])

      // The sink is back for good: the next record goes straight in, after the replayed ones.
      expect(await get(`${gw.url}/e`)).toBe(200)
      await waitFor(() => rowsIn(db) === 5, 'the new record')
    } finally {
      await gw.close()
    }
    expect(sqliteRows(db).map((r) => r.path)).toEqual(['/a', '/b', '/c', '/d', '/e'])
    const verify = await runCliInProcess(['audit', 'verify', '--config', await cliConfig(own, audit)])
    expect(verify.stdout).toMatch(/^ok: 5 records in 1 chain verified/)
  })
})

/** A gateway run: start, one request per path, stop (SIGTERM's drain writes everything). */
async function run(audit: Record<string, unknown>, paths: string[]): Promise<string[]> {
  const gw = await startTestGateway({ audit, ...routes() })
  try {
    for (const path of paths) expect(await get(`${gw.url}${path}`)).toBe(200)
  } finally {
    await gw.close()
  }
  return gw.logs
}

/** A config for the CLI with the gateway's audit section. */
async function cliConfig(own: string, audit: Record<string, unknown>): Promise<string> {
  const file = join(own, 'bouncer.yaml')
  await writeFile(file, stringify({ audit }))
  return file
}

interface ChainRow { chain: string; seq: number; code: string | null; detail: string | null; path: string }

function sqliteRows(path: string): ChainRow[] {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
  try {
    return db.prepare('SELECT c.chain, r.seq, r.code, r.detail, r.path FROM audit_records r JOIN audit_chains c ON c.no = r.chain ORDER BY r.chain, r.seq').all() as unknown as ChainRow[]
  } finally {
    db.close()
  }
}

async function pgQuery(sql: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: SHARED_POSTGRES })
  await client.connect()
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

function sqliteExec(path: string, sql: string): void {
  const db = new DatabaseSync(path)
  db.exec(sql)
  db.close()
}

const restartLine = /^chain ([0-9a-f-]{36}) restarted at \S+ \(record [0-9a-f-]{36}\): (.*)$/m

describe('a chain head that cannot be read', () => {
  it.each([
    ['edited', 'UPDATE audit_records SET status = 299 WHERE seq = 3', 'does not match its hash'],
    ['unreadable', "UPDATE audit_records SET roles = '{broken' WHERE seq = 3", 'cannot be read'],
  ])('SQLite, last record %s: a new chain starts with a chain_restarted record, and verify reports both', async (_kind, damage, why) => {
    const own = await mkdtemp(join(dir, 'head-sqlite-'))
    const db = join(own, 'audit.db')
    const audit = sqliteAudit(own)
    // A gateway run of /a, /b and /c: one for both kinds of damage, each on its own copy.
    await copyOfRun('three', own, (from) => run(sqliteAudit(from), ['/a', '/b', '/c']))
    const old = sqliteRows(db)[0]?.chain as string
    sqliteExec(db, damage)

    const logs = await run(audit, ['/after'])
    expect(logs.join('')).toContain('the audit chain cannot be continued')
    const fresh = sqliteRows(db).filter((r) => r.chain !== old)
    expect(fresh.map((r) => [r.seq, r.code, r.path])).toEqual([[1, 'chain_restarted', '-'], [2, null, '/after']])
    expect(fresh[0]?.detail).toContain(`Chain ${old} cannot be continued: record 3 of chain ${old} in sqlite:${db} ${why}`)

    const verify = await runCliInProcess(['audit', 'verify', '--config', await cliConfig(own, audit)])
    expect(verify.code).toBe(1)
    expect(verify.stderr).toContain(`(seq 3 of chain ${old}`)
    expect(verify.stderr).toMatch(restartLine)
    expect(restartLine.exec(verify.stderr)?.[1]).toBe(fresh[0]?.chain)
  })

  it('PostgreSQL, last record damaged: the same', async () => {
    const own = await mkdtemp(join(dir, 'head-pg-'))
    const schema = uniqueSchema('head')
    const audit = { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }], spill_dir: join(own, 'spill'), flush_interval: '10ms' }
    try {
      await run(audit, ['/a', '/b', '/c'])
      const [{ chain: old }] = (await pgQuery(`SELECT chain FROM ${schema}.audit_records LIMIT 1`)) as [{ chain: string }]
      await pgQuery(`UPDATE ${schema}.audit_records SET hash = 'not-a-hash' WHERE seq = 3`)

      await run(audit, ['/after'])
      const fresh = await pgQuery(`SELECT seq, code, detail, path FROM ${schema}.audit_records WHERE chain <> '${old}' ORDER BY seq`)
      expect(fresh.map((r) => [Number(r.seq), r.code, r.path])).toEqual([[1, 'chain_restarted', '-'], [2, null, '/after']])
      expect(fresh[0]?.detail).toContain(`record 3 of chain ${old} in postgres:${schema} has no valid hash`)

      const verify = await runCliInProcess(['audit', 'verify', '--config', await cliConfig(own, audit)])
      expect(verify.code).toBe(1)
      expect(verify.stderr).toContain(`(seq 3 of chain ${old}`)
      expect(verify.stderr).toMatch(restartLine)
    } finally {
      await dropSchema(SHARED_POSTGRES, schema)
    }
  })

  it('an unreadable chain state file: the old chain stays whole, the new one says why it began', async () => {
    const own = await mkdtemp(join(dir, 'head-state-'))
    const db = join(own, 'audit.db')
    const audit = { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(own, 'spill'), flush_interval: '10ms' }
    await run(audit, ['/a', '/b'])
    await writeFile(join(own, 'spill', 'chain.json'), '{"chain": "half a fi')
    await run(audit, ['/after'])
    const rows = sqliteRows(db)
    expect(rows.map((r) => r.code)).toEqual([null, null, 'chain_restarted', null])
    expect(rows[2]?.detail).toContain(`The previous chain cannot be continued: the chain state ${join(own, 'spill', 'chain.json')} cannot be read (not JSON`)

    const verify = await runCliInProcess(['audit', 'verify', '--config', await cliConfig(own, audit)])
    expect(verify.code, verify.stdout).toBe(0)
    expect(verify.stdout).toMatch(/^ok: 4 records in 2 chains verified\n/)
    expect(verify.stdout).toMatch(restartLine)
  })
})

const ADMIN = 'integrity-admin-token-0123456789abcdef'

interface Head { chain: string; head: { count: number; id: string; hash: string }; checkpoint: { count: number; time: string; kid: string } | null; key: { kid: string; x: string } }

/** GET /api/audit/head (null while the audit worker is starting: 404). */
async function headOf(adminUrl: string): Promise<Head | null> {
  const res = await request(`${adminUrl}/api/audit/head`, { headers: { authorization: `Bearer ${ADMIN}` } })
  if (res.statusCode === 404) {
    await res.body.dump()
    return null
  }
  expect(res.statusCode).toBe(200)
  return (await res.body.json()) as Head
}

/** Twenty requests, a checkpoint signed on schedule (not only at shutdown), then a stop. */
async function twentyRecords(audit: Record<string, unknown>, extra: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<Head> {
  const gw = await startTestGateway({ admin: { token: ADMIN }, audit, ...extra, ...routes() }, { env })
  try {
    for (let i = 0; i < 20; i++) expect(await get(`${gw.url}/r/${i}`)).toBe(200)
    let head: Head | null = null
    await waitFor(async () => (head = await headOf(gw.adminUrl))?.checkpoint?.count === 20, 'a checkpoint at count 20')
    const { head: live, checkpoint, key } = head as unknown as Head
    expect(live.count).toBe(20)
    expect(checkpoint?.kid).toBe(key.kid)
    return head as unknown as Head
  } finally {
    await gw.close()
  }
}

/** The audit section of the tests that start from a copy of the shared runs below: a SQLite log in `own`. */
const sqliteAudit = (own: string, checkpointInterval?: string) => ({
  sinks: [{ type: 'sqlite', path: join(own, 'audit.db') }], spill_dir: join(own, 'spill'), flush_interval: '10ms',
  ...(checkpointInterval === undefined ? {} : { checkpoint_interval: checkpointInterval }),
})

/**
 * A gateway run's log (audit.db, its checkpoint file and key, spill/chain.json), made once for the
 * file and copied into each test's own directory, which then damages its copy alone: the tests that
 * start from the same log need not each start a gateway and wait for its checkpoint. The log holds
 * no path of its own (the config names them), so a copy is that log at its new place.
 */
const shared = new Map<string, Promise<{ from: string; value: unknown }>>()
async function copyOfRun<T>(name: string, own: string, make: (from: string) => Promise<T>): Promise<T> {
  let made = shared.get(name)
  if (made === undefined) {
    made = (async () => {
      const from = await mkdtemp(join(dir, `shared-${name}-`))
      return { from, value: await make(from) }
    })()
    shared.set(name, made)
  }
  const { from, value } = await made
  await cp(from, own, { recursive: true })
  return value as T
}

/** twentyRecords on sqliteAudit(own, '200ms'), as a copy of the file's one run. */
const twentyRecordsIn = (own: string) => copyOfRun('twenty', own, (from) => twentyRecords(sqliteAudit(from, '200ms')))

const truncated = (chain: string, head: Head) =>
  `audit log truncated: 3 records missing after record 17 of chain ${chain}: the log ends at count 17 but the checkpoint at ${head.checkpoint?.time} says 20`

describe('truncation is seen: signed checkpoints of the chain head', () => {
  it('SQLite: the three newest records deleted are named, from the checkpoint file or the table; a forged checkpoint is named', async () => {
    const own = await mkdtemp(join(dir, 'truncate-sqlite-'))
    const db = join(own, 'audit.db')
    const audit = sqliteAudit(own, '200ms')
    const head = await twentyRecordsIn(own)
    const config = await cliConfig(own, audit)
    expect(await runCliInProcess(['audit', 'verify', '--config', config])).toMatchObject({
      code: 0, stdout: 'ok: 20 records in 1 chain verified\nanchored: 1 chain reaches its latest signed checkpoint\n',
    })

    sqliteExec(db, 'DELETE FROM audit_records WHERE seq > 17')
    let verify = await runCliInProcess(['audit', 'verify', '--config', config])
    expect(verify.code).toBe(1)
    expect(verify.stderr.split('\n')[0]).toBe(truncated(head.chain, head))

    // The table's copy deleted too: the file, kept apart from the records, still says 20.
    sqliteExec(db, 'DELETE FROM audit_head_checkpoints')
    verify = await runCliInProcess(['audit', 'verify', '--config', config])
    expect(verify.code).toBe(1)
    expect(verify.stderr.split('\n')[0]).toBe(truncated(head.chain, head))

    // A checkpoint with a count it was not signed for.
    const file = `${db}.checkpoints`
    const lines = (await readFile(file, 'utf8')).trim().split('\n')
    const forged = { ...(JSON.parse(lines.at(-1) as string) as Record<string, unknown>), count: 25 }
    await writeFile(file, `${lines.join('\n')}\n${JSON.stringify(forged)}\n`)
    verify = await runCliInProcess(['audit', 'verify', '--config', config])
    expect(verify.code).toBe(1)
    expect(verify.stderr).toContain(`checkpoint forged: the checkpoint at ${head.checkpoint?.time} for chain ${head.chain} (count 25) in the checkpoint file ${file}: its signature does not verify`)
    expect(verify.stderr).toContain(truncated(head.chain, head)) // measured against the genuine one
  })

  it.each([
    ['the three newest records deleted', false],
    ['the log and its chain state replaced by an older copy', true],
  ])('SQLite, %s while the gateway was stopped: the next start does not write over the gap, and verify still names it', async (_kind, stateToo) => {
    const own = await mkdtemp(join(dir, 'truncate-restart-'))
    const db = join(own, 'audit.db')
    const audit = sqliteAudit(own, '200ms')
    const head = await twentyRecordsIn(own)
    if (stateToo) {
      const reader = new DatabaseSync(db, { readOnly: true })
      const at17 = reader.prepare('SELECT id, hash FROM audit_records WHERE seq = 17').get() as { id: string; hash: string }
      reader.close()
      await writeFile(join(own, 'spill', 'chain.json'), JSON.stringify({ chain: head.chain, seq: 17, hash: at17.hash, id: at17.id }))
    }
    sqliteExec(db, 'DELETE FROM audit_records WHERE seq > 17')

    // More records than were deleted: the chain went on at 18, and the checkpoint signed at 22 hid the loss.
    const logs = await run(audit, ['/a', '/b', '/c', '/d', '/e'])
    expect(logs.join('')).toContain('the audit chain cannot be continued')
    const fresh = sqliteRows(db).filter((r) => r.chain !== head.chain)
    expect(fresh.map((r) => [r.seq, r.code, r.path])).toEqual([[1, 'chain_restarted', '-'], [2, null, '/a'], [3, null, '/b'], [4, null, '/c'], [5, null, '/d'], [6, null, '/e']])
    expect(fresh[0]?.detail).toContain(`chain ${head.chain} ends at record 17 in its state file and sinks, but the checkpoint signed at ${head.checkpoint?.time} vouches for 20`)

    const verify = await runCliInProcess(['audit', 'verify', '--config', await cliConfig(own, audit)])
    expect(verify.code).toBe(1)
    expect(verify.stderr.split('\n')[0]).toBe(truncated(head.chain, head))
    expect(verify.stderr).toMatch(restartLine)
  })

  it('SQLite: a chain deleted whole, its row in audit_chains and its table checkpoint too, is named from the checkpoint file', async () => {
    const own = await mkdtemp(join(dir, 'truncate-whole-'))
    const db = join(own, 'audit.db')
    const audit = sqliteAudit(own, '200ms')
    const head = await twentyRecordsIn(own)
    sqliteExec(db, 'DELETE FROM audit_records; DELETE FROM audit_head_checkpoints; DELETE FROM audit_chains')
    const verify = await runCliInProcess(['audit', 'verify', '--config', await cliConfig(own, audit)])
    expect(verify.code).toBe(1)
    expect(verify.stderr.split('\n')[0]).toBe(`audit log truncated: 20 records missing after record 0 of chain ${head.chain}: the log ends at count 0 but the checkpoint at ${head.checkpoint?.time} says 20`)
  })

  it('SQLite: the log file deleted is every checkpointed record missing, not "no audit log yet"', async () => {
    const own = await mkdtemp(join(dir, 'truncate-file-'))
    const db = join(own, 'audit.db')
    const audit = sqliteAudit(own, '200ms')
    const head = await twentyRecordsIn(own)
    for (const file of [db, `${db}-wal`, `${db}-shm`]) await rm(file, { force: true })
    const verify = await runCliInProcess(['audit', 'verify', '--config', await cliConfig(own, audit)])
    expect(verify.code).toBe(1)
    expect(verify.stderr.split('\n')[0]).toBe(`audit log truncated: 20 records missing after record 0 of chain ${head.chain}: the log ends at count 0 but the checkpoint at ${head.checkpoint?.time} says 20`)
  })

  it('PostgreSQL, the key in the secrets store: the three newest rows deleted are named', async () => {
    const own = await mkdtemp(join(dir, 'truncate-pg-'))
    const schema = uniqueSchema('truncate')
    const env = { BOUNCER_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') }
    const secrets = { store: { type: 'embedded', path: join(own, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' } }
    const audit = { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }], spill_dir: join(own, 'spill'), flush_interval: '10ms', checkpoint_interval: '200ms' }
    try {
      const head = await twentyRecords(audit, { secrets }, env)
      const config = join(own, 'bouncer.yaml')
      await writeFile(config, stringify({ audit, secrets }))
      const list = await runCliInProcess(['secrets', 'list', '--config', config], { env })
      expect(list.stdout).toContain('bouncer.audit-checkpoint-key')
      await expect(readFile(join(own, 'spill', 'checkpoints.ndjson.key'))).rejects.toThrow() // no key file beside the log

      await pgQuery(`DELETE FROM ${schema}.audit_records WHERE seq > 17`)
      const verify = await runCliInProcess(['audit', 'verify', '--config', config], { env })
      expect(verify.code).toBe(1)
      expect(verify.stderr.split('\n')[0]).toBe(truncated(head.chain, head))

      // Without the master key the checkpoints cannot be checked, as another instance's: plain verify
      // passes and says why (the deletion does not show), --strict fails on it.
      const blind = await runCliInProcess(['audit', 'verify', '--config', config], { env: { BOUNCER_MASTER_KEY: '' } })
      expect(blind).toMatchObject({ code: 0, stderr: '' })
      expect(blind.stdout).toMatch(/^not checked: \d+ checkpoints but no key to check them: the secrets store cannot be read \(the master key is missing.*: records deleted from a chain's end would not show; --strict fails$/m)
      const strictBlind = await runCliInProcess(['audit', 'verify', '--strict', '--config', config], { env: { BOUNCER_MASTER_KEY: '' } })
      expect(strictBlind.code).toBe(1)
      expect(strictBlind.stderr.split('\n')[0]).toMatch(/^checkpoints not checked: \d+ checkpoints but no key to check them: the secrets store cannot be read \(the master key is missing/)
    } finally {
      await dropSchema(SHARED_POSTGRES, schema)
    }
  })
})

// The checkpoint key had no way to be rotated: `secrets rotate bouncer.audit-checkpoint-key` read a
// value from stdin, and a value that is not a key was replaced by the gateway with a new one, the
// key older checkpoints verify with gone with it. It now makes a new key pair, as for the assertion
// key; a gateway signs with it from its next start, and verify trusts every key the store has held
// (with only the current and previous, a chain that ended two rotations ago failed --strict for good).
describe('rotating the checkpoint key', () => {
  it('a new key pair; the gateway signs with it after a restart; verify --strict checks every generation', { timeout: 30_000 }, async () => {
    const own = await mkdtemp(join(dir, 'rotate-key-'))
    const db = join(own, 'audit.db')
    const env = { BOUNCER_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') }
    const secrets = { store: { type: 'embedded', path: join(own, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' } }
    const audit = { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(own, 'spill'), flush_interval: '10ms', checkpoint_interval: '200ms' }
    const first = await twentyRecords(audit, { secrets }, env)
    const config = join(own, 'bouncer.yaml')
    await writeFile(config, stringify({ audit, secrets }))

    const refused = await runCliInProcess(['secrets', 'put', 'bouncer.audit-checkpoint-key', '--config', config], { env, input: 'not-a-key' })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('bouncer.audit-checkpoint-key holds the audit checkpoint signing key: rotate it with "bouncer secrets rotate bouncer.audit-checkpoint-key" (no value)')
    // A chain that ends signed by the first key (another instance that is gone), then two rotations:
    // verify still checks it, by every key the store has held.
    const gone = await twentyRecords({ ...audit, spill_dir: join(own, 'spill-gone') }, { secrets }, env)
    for (const version of [2, 3]) {
      const rotated = await runCliInProcess(['secrets', 'rotate', 'bouncer.audit-checkpoint-key', '--config', config], { env })
      expect(rotated).toMatchObject({ code: 0, stdout: `rotated bouncer.audit-checkpoint-key: version ${version} is current, version ${version - 1} is previous\n` })
    }

    const gw = await startTestGateway({ admin: { token: ADMIN }, audit, secrets, ...routes() }, { env })
    let second: Head | null = null
    try {
      for (let i = 0; i < 5; i++) expect(await get(`${gw.url}/again/${i}`)).toBe(200)
      await waitFor(async () => (second = await headOf(gw.adminUrl))?.checkpoint?.count === 25, 'a checkpoint at count 25')
    } finally {
      await gw.close()
    }
    const after = second as unknown as Head
    expect(after.chain).toBe(first.chain)
    expect(gone.chain).not.toBe(first.chain)
    expect(after.key.kid).not.toBe(first.key.kid)
    expect(after.checkpoint?.kid).toBe(after.key.kid)
    // Every chain reaches a checkpoint that verifies: the gone instance's with the first key, the
    // restarted gateway's with the third (and the command line's chain of the rotations).
    expect(await runCliInProcess(['audit', 'verify', '--strict', '--config', config], { env })).toMatchObject({
      code: 0, stdout: 'ok: 47 records in 3 chains verified\nanchored: 3 chains reach their latest signed checkpoint\n',
    })
    sqliteExec(db, 'DELETE FROM audit_records WHERE seq > 22')
    const verify = await runCliInProcess(['audit', 'verify', '--config', config], { env })
    expect(verify.code).toBe(1)
    expect(verify.stderr.split('\n')[0]).toMatch(/^audit log truncated: 3 records missing after record 22 of chain /)
  })
})

// Found by a review: verify on a host without the checkpoint key (an auditor's, a copy of the log)
// failed "checkpoints not checked" once any gateway had signed, where a key of another instance's
// was a note. No key here is now as another instance's key: the chain and its cuts are named as not
// checked, plain verify passes, --strict fails.
describe('verify where the checkpoint key is not', () => {
  it('SQLite, the key file gone: verify passes naming the chain it could not anchor; --strict fails', async () => {
    const own = await mkdtemp(join(dir, 'no-key-'))
    const db = join(own, 'audit.db')
    const audit = sqliteAudit(own, '200ms')
    const head = await twentyRecordsIn(own)
    const config = await cliConfig(own, audit)
    await rm(`${db}.checkpoints.key`)
    const checkpoints = (await readFile(`${db}.checkpoints`, 'utf8')).trim().split('\n').length + 1 // the file's, and the table's latest
    const why = `${checkpoints} checkpoints but no key to check them: no secrets store is configured, and there is no key file at ${db}.checkpoints.key`

    expect(await runCliInProcess(['audit', 'verify', '--config', config])).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        'ok: 20 records in 1 chain verified',
        `not checked: ${why}: records deleted from a chain's end would not show; --strict fails`,
        `not anchored: chain ${head.chain} has no checkpoint signed by a key this config holds, so records deleted from its end would not show`,
        '',
      ].join('\n'),
    })
    const strict = await runCliInProcess(['audit', 'verify', '--strict', '--config', config])
    expect(strict).toMatchObject({ code: 1, stdout: '' })
    expect(strict.stderr.split('\n')[0]).toBe(`checkpoints not checked: ${why}`)
  })
})

// Found by a review: an auditor who may read the SQLite log (0644) but not write its folder (0755,
// the gateway's) could not run `bouncer audit` or `audit verify`: SQLite reads a WAL log through
// its -wal and -shm files, which it could not make there ("attempt to write a readonly database")
// or, left there by a gateway and not this user's to open, not open. They read the file as it
// stands now, and say so on stderr; the gateway's own open is unchanged. Only root can run the
// commands as another account (nobody) on files root made.
describe('the log read by an auditor who may read it but not write its folder', () => {
  it.skipIf(process.getuid?.() !== 0)('SQLite: audit and audit verify answer read-only, and say that what is still in the -wal is not read', async () => {
    const own = await mkdtemp(join(tmpdir(), 'bouncer-auditor-'))
    onTestFinished(() => rm(own, { recursive: true, force: true }))
    await chmod(own, 0o755) // mkdtemp's 700 would hide everything from nobody
    const db = join(own, 'audit.db')
    const audit = sqliteAudit(own, '200ms')
    const head = await twentyRecordsIn(own)
    const config = await cliConfig(own, audit)
    for (const file of [db, `${db}.checkpoints`, config]) await chmod(file, 0o644)
    expect([`${db}-wal`, `${db}-shm`].filter((file) => existsSync(file))).toEqual([]) // the gateway stopped: checkpointed, removed
    const asAuditor = (args: string[]) => runCli(args, { as: { uid: 65534, gid: 65534 } })
    const warning = (why: string, verifying = false) => `warning: read the audit log ${db} as it stands, without SQLite's locks and its -wal and -shm files (${why}): records still in ${db}-wal, not yet checkpointed into the log, are not read${verifying ? ", and where a checkpoint counts them verify says them missing from their chain's end" : ''}\n`
    const noFolder = `this user may not write its folder ${own}, where SQLite would make them`

    const search = await asAuditor(['audit', '--config', config, '--json'])
    expect(search).toMatchObject({ code: 0, stderr: warning(noFolder) })
    expect(search.stdout.trim().split('\n').map((line) => (JSON.parse(line) as AuditRecord).path)).toEqual(Array.from({ length: 20 }, (_, i) => `/r/${19 - i}`))

    // The key file is the gateway's (0600): no key here, as on another host.
    const verify = await asAuditor(['audit', 'verify', '--config', config])
    expect(verify).toMatchObject({ code: 0, stderr: warning(noFolder, true) })
    expect(verify.stdout).toMatch(new RegExp(`^ok: 20 records in 1 chain verified\nnot checked: \\d+ checkpoints but no key to check them: no secrets store is configured, and cannot read the checkpoint key file ${db}\\.checkpoints\\.key: .*permission denied.*\nnot anchored: chain ${head.chain} has no checkpoint`, 'i'))
    // An auditor given the key: the chain reaches its checkpoint, read from the file as it stands.
    await chmod(`${db}.checkpoints.key`, 0o644)
    expect(await asAuditor(['audit', 'verify', '--config', config])).toEqual({
      code: 0, stdout: 'ok: 20 records in 1 chain verified\nanchored: 1 chain reaches its latest signed checkpoint\n', stderr: warning(noFolder, true),
    })

    // A gateway running: its -wal and -shm (0644, as the log) are read as they are, nothing to say.
    const gw = await startTestGateway({ admin: { token: ADMIN }, audit, ...routes() })
    try {
      expect(await get(`${gw.url}/r/20`)).toBe(200)
      await waitFor(() => rowsIn(db) === 21, 'the 21st record written')
      expect(await asAuditor(['audit', '--config', config, '--limit', '1', '--json'])).toMatchObject({ code: 0, stderr: '', stdout: expect.stringContaining('"path":"/r/20"') })
      // Theirs only (0600): the file as it stands, said so.
      for (const file of [`${db}-wal`, `${db}-shm`]) await chmod(file, 0o600)
      const unopened = await asAuditor(['audit', '--config', config, '--json'])
      expect(unopened).toMatchObject({ code: 0, stderr: warning('this user may not open them') })
      expect(unopened.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(20)
    } finally {
      await gw.close()
    }
  })
})

// An operations report: a named pipe put where the checkpoint file was held the audit worker's
// thread in its open for ever, and every record after it. The file is refused, said once, and the
// records, the sinks' checkpoints and search go on.
describe('a checkpoint file replaced by a named pipe', () => {
  it('is refused and logged once; records are still written, checkpointed in the log and searchable', async () => {
    const own = await mkdtemp(join(dir, 'checkpoint-pipe-'))
    const db = join(own, 'audit.db')
    const file = `${db}.checkpoints`
    const audit = { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(own, 'spill'), flush_interval: '10ms', checkpoint_interval: '100ms' }
    const gw = await startTestGateway({ admin: { token: ADMIN }, audit, ...routes() })
    let holder: number | null = null
    const checkpointAt = (count: number) => waitFor(async () => (await headOf(gw.adminUrl))?.checkpoint?.count === count, `a checkpoint at count ${count}`)
    const refusals = () => gw.logs.filter((line) => line.includes('the audit checkpoint file cannot be written'))
    try {
      for (let i = 0; i < 5; i++) expect(await get(`${gw.url}/r/${i}`)).toBe(200)
      await checkpointAt(5)
      await rm(file)
      expect(spawnSync('mkfifo', [file]).status).toBe(0)

      for (let i = 5; i < 10; i++) expect(await get(`${gw.url}/r/${i}`)).toBe(200)
      await checkpointAt(10)
      for (let i = 10; i < 15; i++) expect(await get(`${gw.url}/r/${i}`)).toBe(200)
      await checkpointAt(15)
      expect(refusals()).toHaveLength(1)
      expect(JSON.parse(refusals()[0] as string)).toMatchObject({ level: 'error', path: file, err: { message: `cannot write ${file}: it is not a regular file (a device, a pipe or a socket)` } })

      const res = await request(`${gw.adminUrl}/api/audit?limit=100`, { headers: { authorization: `Bearer ${ADMIN}` } })
      expect(res.statusCode).toBe(200)
      expect(((await res.body.json()) as unknown[]).length).toBe(15)
      const checkpoints = new DatabaseSync(db, { readOnly: true })
      try {
        expect(checkpoints.prepare('SELECT max(count) AS n FROM audit_head_checkpoints').get()).toEqual({ n: 15 })
      } finally {
        checkpoints.close()
      }
    } finally {
      // A worker held in a plain open of the pipe (without the fix) is let go: a reader opens it.
      try {
        holder = openSync(file, constants.O_RDWR | constants.O_NONBLOCK)
      } catch {
        // gone or never made
      }
      await gw.close()
      if (holder !== null) closeSync(holder)
    }
  }, 60_000)
})

/**
 * A whole chain fabricated in a SQLite log, as someone with write access to the file would: one
 * record, a copy of a real one under another chain, its hashes recomputed, so the chain checks.
 */
async function fabricateChain(db: string, chain: string, time: string): Promise<void> {
  const [real] = await searchAudit({ type: 'sqlite', path: db }, { limit: 1 })
  const { hash: _hash, ...rest } = real as AuditRecord
  const forged = { ...rest, id: crypto.randomUUID(), time, subject: 'alice', instance: chain, prev_hash: GENESIS_HASH }
  const hash = hashOf(forged)
  sqliteExec(db, `INSERT INTO audit_chains (chain) VALUES ('${chain}');
    CREATE TEMP TABLE forged AS SELECT * FROM audit_records WHERE id = '${real?.id}';
    UPDATE forged SET chain = (SELECT no FROM audit_chains WHERE chain = '${chain}'), seq = 1, id = '${forged.id}', time = '${time}',
      time_ms = ${Date.parse(time)}, subject = 'alice', instance = '${chain}', prev_hash = '${GENESIS_HASH}', hash = '${hash}';
    INSERT INTO audit_records SELECT * FROM forged;`)
}

// Found by the audit probe: a whole chain fabricated with its hashes recomputed (a new instance's)
// checked like any other, and verify passed with a note on stdout. --strict fails on it: a gateway
// signs its chain every checkpoint_interval, so a gateway's chain older than that with no checkpoint
// its keys check is one no gateway vouches for. The change chains (cli:, admin:) no key signs, by
// design, and a gateway's chain in its first intervals has had no checkpoint yet: notes, still.
describe('verify --strict: a chain no gateway signed', () => {
  it('SQLite: a fabricated chain fails --strict; a cli: chain and a chain in its first intervals are noted', async () => {
    const own = await mkdtemp(join(dir, 'strict-'))
    const db = join(own, 'audit.db')
    const audit = sqliteAudit(own, '200ms')
    await twentyRecordsIn(own)
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString()
    await fabricateChain(db, 'forged-1', hourAgo)
    await fabricateChain(db, 'cli:otherhost', hourAgo)
    await fabricateChain(db, 'fresh-1', new Date().toISOString())
    // The CLI's interval is ten minutes: fresh-1 is in its first intervals for as long as the test runs.
    const config = await cliConfig(own, { ...audit, checkpoint_interval: '10m' })
    const notes = ['cli:otherhost', 'fresh-1'].map((chain) => `not anchored: chain ${chain} has no signed checkpoint, so records deleted from its end would not show`)

    const lenient = await runCliInProcess(['audit', 'verify', '--config', config])
    expect(lenient.code).toBe(0)
    expect(lenient.stdout).toContain('not anchored: chain forged-1 has no signed checkpoint')

    const strict = await runCliInProcess(['audit', 'verify', '--strict', '--config', config])
    expect(strict.code).toBe(1)
    expect(strict.stderr.split('\n')[0]).toBe(`audit chain not anchored: chain forged-1 (newest record ${hourAgo}) has no checkpoint signed by a key this config holds, though a gateway signs its chain every checkpoint_interval: fabricated, or its gateway stopped before its first checkpoint`)
    for (const note of notes) expect(strict.stderr).toContain(note)

    sqliteExec(db, `DELETE FROM audit_records WHERE chain = (SELECT no FROM audit_chains WHERE chain = 'forged-1')`)
    const clean = await runCliInProcess(['audit', 'verify', '--strict', '--config', config])
    expect(clean.stderr).toBe('')
    expect(clean.code).toBe(0)
    for (const note of notes) expect(clean.stdout).toContain(note)
  })
})

/** One sink's log, for the retention cut's tests: its SQL, its tables' names, and how old logs looked. */
interface CutLog {
  sink: Record<string, unknown>
  exec(sql: string): Promise<void>
  rows(sql: string): Promise<Array<Record<string, unknown>>>
  table(name: string): string
  source: AuditSource
  /** The checkpoint file (its key beside it). */
  checkpoints(own: string): string
  /** The log as a gateway before signed cuts left it: no signed columns, the schema version before them. */
  legacy: string
}

function sqliteCutLog(db: string): CutLog {
  return {
    sink: { type: 'sqlite', path: db },
    source: { type: 'sqlite', path: db },
    checkpoints: () => `${db}.checkpoints`,
    exec: async (sql) => sqliteExec(db, sql),
    rows: async (sql) => {
      const reader = new DatabaseSync(db, { readOnly: true, timeout: 5000 })
      try {
        return reader.prepare(sql).all() as Array<Record<string, unknown>>
      } finally {
        reader.close()
      }
    },
    table: (name) => name,
    legacy: `${['newest', 'time', 'kid', 'sig', 'retention_ms'].map((c) => `ALTER TABLE audit_checkpoint DROP COLUMN ${c}`).join('; ')}; PRAGMA user_version = 3`,
  }
}

function postgresCutLog(schema: string): CutLog {
  return {
    sink: { type: 'postgres', url: SHARED_POSTGRES, schema },
    source: { type: 'postgres', url: SHARED_POSTGRES, schema },
    checkpoints: (own) => join(own, 'spill', 'checkpoints.ndjson'),
    exec: async (sql) => void (await pgQuery(sql)),
    rows: pgQuery,
    table: (name) => `${schema}.${name}`,
    legacy: `ALTER TABLE ${schema}.audit_checkpoint DROP COLUMN newest, DROP COLUMN time, DROP COLUMN kid, DROP COLUMN sig, DROP COLUMN retention_ms; UPDATE ${schema}.audit_meta SET version = 2`,
  }
}

// Retention leaves where each chain now starts in a row of audit_checkpoint. Unsigned, anyone who
// could write the log deleted a chain's oldest records, wrote that row by hand, and verify said ok
// (the brief's "forgeable retention row"). The gateway now signs the cut with its checkpoint key.
describe('retention\'s cut is signed', () => {
  const cases: Array<[string, (own: string) => CutLog]> = [
    ['SQLite', (own) => sqliteCutLog(join(own, 'audit.db'))],
    ['PostgreSQL', () => postgresCutLog(uniqueSchema('retcut'))],
  ]
  // The two stores side by side: each has its own directory, log, checkpoint key and gateways, and
  // much of each is waiting for retention's passes (every second, on a 2 s retention).
  it.concurrent.for(cases)('%s: a genuine cut verifies; one written by hand, re-signed, edited or made early is named; an old unsigned one is noted, then signed', { timeout: 60_000 }, async ([_name, logOf], { expect }) => {
    const own = await mkdtemp(join(dir, 'cut-'))
    const log = logOf(own)
    const audit = { sinks: [log.sink], spill_dir: join(own, 'spill'), flush_interval: '10ms', checkpoint_interval: '200ms', retention: '2s' }
    const records = async () => Number((await log.rows(`SELECT count(*) AS n FROM ${log.table('audit_records')}`))[0]?.n)
    const cutRow = async () => (await log.rows(`SELECT * FROM ${log.table('audit_checkpoint')}`))[0] as Record<string, unknown>
    /** Six records cut by retention, then three newer ones kept. */
    const cutThenKeep = async (prefix: string, cutAt: number) => {
      const gw = await startTestGateway({ audit, ...routes() })
      try {
        for (let i = 0; i < 6; i++) expect(await get(`${gw.url}/${prefix}-old/${i}`)).toBe(200)
        // Every record cut, up to the sixth: a count of 0 alone is also the log before its first write.
        await waitFor(async () => Number((await cutRow().catch(() => undefined))?.seq) === cutAt && (await records()) === 0, `retention to cut at ${cutAt}`, 15_000)
        for (let i = 0; i < 3; i++) expect(await get(`${gw.url}/${prefix}-new/${i}`)).toBe(200)
        await waitFor(async () => (await records()) === 3, 'the three new records')
      } finally {
        await gw.close()
      }
    }
    const verifyCli = async (retention: string, ...flags: string[]) =>
      runCliInProcess(['audit', 'verify', ...flags, '--config', await cliConfig(own, { ...audit, retention })])
    /** What the command prints and its exit code, in process (a command's start is ~1.5 s here): the CLI's own report. */
    const verify = async (retention: string, ...flags: string[]) => {
      const file = log.checkpoints(own)
      const retentionMs = parseDuration(retention)
      if (!retentionMs.ok) throw new Error(retention)
      const result = await verifyAudit(log.source, { file, keys: checkpointVerificationKeys(null, `${file}.key`), keyProblem: null, retentionMs: retentionMs.value })
      const strict = flags.includes('--strict') ? { checkpointIntervalMs: 200, now: Date.now() } : null
      const text = `${verifyReport(result, strict)}\n`
      return verifyPasses(result, strict) ? { code: 0, stdout: text, stderr: '' } : { code: 1, stdout: '', stderr: text }
    }
    try {
      // A log as a gateway before signed cuts left it: noted, not failed (an upgrade); the next cut signs it.
      await cutThenKeep('a', 6)
      const chain = String((await log.rows(`SELECT chain FROM ${log.table('audit_chains')}`).catch(async () => [await cutRow()]))[0]?.chain)
      await log.exec(log.legacy)
      const upgraded = await verifyCli('2s')
      expect(upgraded.code).toBe(0)
      expect(upgraded.stdout).toContain(`not signed: the retention cut of chain ${chain} (after record 6) has no signature (left by a gateway before signed cuts, or written by hand): the chain's next retention run signs it; --strict fails until then`)
      await cutThenKeep('b', 15)
      const genuine = await cutRow()
      const at = 15
      expect(await verifyCli('2s', '--strict')).toMatchObject({ code: 0, stdout: 'ok: 3 records in 1 chain verified\nanchored: 1 chain reaches its latest signed checkpoint\n' })

      // retention lengthened since (2s to an hour): the cut was made under 2s, and signed so. Held
      // against the config's hour from now, this genuine log failed verify ("deleted early").
      expect(Number(genuine.retention_ms)).toBe(2_000)
      const lengthened = await verifyCli('1h')
      expect(lengthened.stderr).toBe('')
      expect(lengthened.code).toBe(0)

      // A cut signed as made under an hour that deleted records two seconds old: early (a wrong clock).
      const file = log.checkpoints(own)
      const gatewayKey = { kid: String(genuine.kid), privateKey: createPrivateKey({ key: (JSON.parse(await readFile(`${file}.key`, 'utf8')) as { jwk: never }).jwk, format: 'jwk' }) }
      const early = signCut({ chain, seq: at, hash: String(genuine.hash), newest: String(genuine.newest), retention: 3_600_000 }, gatewayKey)
      await log.exec(`UPDATE ${log.table('audit_checkpoint')} SET retention_ms = 3600000, time = '${early.time}', sig = '${early.sig}'`)
      const named = await verify('2s')
      expect(named.code).toBe(1)
      expect(named.stderr.split('\n')[0]).toBe(`audit records deleted early: the retention cut at ${early.time} of chain ${chain} (after record ${at}) deleted records as new as ${genuine.newest}, younger than the retention it was made under (3600 s) allows (a wrong clock)`)
      // Its retention edited back to the 2s it was not signed with: forged.
      await log.exec(`UPDATE ${log.table('audit_checkpoint')} SET retention_ms = 2000`)
      expect((await verify('2s')).stderr.split('\n')[0]).toMatch(/^retention cut forged: /)
      await log.exec(`UPDATE ${log.table('audit_checkpoint')} SET time = '${genuine.time}', sig = '${genuine.sig}'`)
      expect((await verify('2s')).code).toBe(0)

      // The oldest record left deleted by hand, and the row moved past it: unsigned, as before signed cuts.
      const [oldest] = await log.rows(`SELECT seq, hash FROM ${log.table('audit_records')} ORDER BY seq LIMIT 1`)
      expect(Number(oldest?.seq)).toBe(at + 1)
      await log.exec(`DELETE FROM ${log.table('audit_records')} WHERE seq = ${at + 1};
        UPDATE ${log.table('audit_checkpoint')} SET seq = ${at + 1}, hash = '${oldest?.hash}', newest = NULL, retention_ms = NULL, time = NULL, kid = NULL, sig = NULL`)
      const noted = await verify('2s')
      expect(noted.code).toBe(0)
      expect(noted.stdout).toContain(`not signed: the retention cut of chain ${chain} (after record ${at + 1}) has no signature`)
      const strict = await verifyCli('2s', '--strict')
      expect(strict.code).toBe(1)
      expect(strict.stderr.split('\n')[0]).toBe(`retention cut not signed: the retention cut of chain ${chain} (after record ${at + 1}) has no signature, so records 1–${at + 1} may have been deleted outside retention (a cut left by a gateway before signed cuts is signed by the chain's next retention run)`)

      // The genuine signature kept, seq and hash moved to the hand-made cut: forged.
      await log.exec(`UPDATE ${log.table('audit_checkpoint')} SET newest = '${genuine.newest}', retention_ms = ${Number(genuine.retention_ms)}, time = '${genuine.time}', kid = '${genuine.kid}', sig = '${genuine.sig}'`)
      const moved = await verify('2s')
      expect(moved.code).toBe(1)
      expect(moved.stderr.split('\n')[0]).toBe(`retention cut forged: the retention cut at ${genuine.time} of chain ${chain} (after record ${at + 1}): its signature does not verify, so records 1–${at + 1} may have been deleted outside retention`)

      // The genuine cut with its newest record's time moved back (to hide an early cut): forged.
      await log.exec(`UPDATE ${log.table('audit_checkpoint')} SET seq = ${at}, hash = '${genuine.hash}', newest = '2000-01-01T00:00:00.000Z'`)
      expect((await verify('1h')).stderr).toContain(`retention cut forged: the retention cut at ${genuine.time} of chain ${chain} (after record ${at}): its signature does not verify, so records 1–${at} may have been deleted outside retention`)

      // The hand-made cut signed with another key: under the gateway's kid it is forged; under its own, not a key this config holds.
      await log.exec(`UPDATE ${log.table('audit_checkpoint')} SET seq = ${at + 1}, hash = '${oldest?.hash}'`)
      const { privateKey } = generateKeyPairSync('ed25519')
      const cut = { chain, seq: at + 1, hash: String(oldest?.hash), newest: String(genuine.newest) }
      const resign = (signed: RetentionCut) => log.exec(`UPDATE ${log.table('audit_checkpoint')} SET newest = '${signed.newest}', retention_ms = NULL, time = '${signed.time}', kid = '${signed.kid}', sig = '${signed.sig}'`)
      await resign(signCut(cut, { kid: String(genuine.kid), privateKey }))
      expect((await verify('2s')).stderr.split('\n')[0]).toMatch(new RegExp(`^retention cut forged: the retention cut at \\S+ of chain ${chain} \\(after record ${at + 1}\\): its signature does not verify`))
      await resign(signCut(cut, { kid: 'not-this-gateway', privateKey }))
      const other = await verify('2s')
      expect(other.code).toBe(0)
      expect(other.stdout).toMatch(new RegExp(`not checked: the retention cut at \\S+ of chain ${chain} \\(after record ${at + 1}\\) is signed by a key this config does not hold \\(another instance's\\?\\)`))
      expect((await verify('2s', '--strict')).stderr.split('\n')[0]).toMatch(new RegExp(`^retention cut not checked: the retention cut at \\S+ of chain ${chain} \\(after record ${at + 1}\\) is signed by a key this config does not hold$`))
    } finally {
      if ('schema' in log.sink) await dropSchema(SHARED_POSTGRES, String(log.sink.schema))
    }
  })
})
