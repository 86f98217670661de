// The command line's credential changes (keys create|revoke, secrets rotate|delete, …) leave an
// audit record, as a request does: in the chain of this host (`cli:<host>`), naming the OS user who
// ran the command, verified by `audit verify` and found by `audit --principal`. The commands run in
// this process (main(), as bin/bouncer.js calls it) except where two processes must race.
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { hostname, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import pg from 'pg'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { changeSignerOf, openChangeLog, searchAudit, verifyAudit, type AuditRecord, type AuditSource } from '../../src/audit/index.ts'
import type { AuditConfig } from '../../src/config/index.ts'
import { openChangeTrail } from '../../src/cli/change-audit.ts'
import { newCheckpointKey } from '../../src/audit/checkpoint-key.ts'
import { loadCommandConfig } from '../../src/cli/config.ts'
import { main } from '../../src/cli/main.ts'
import { runCli } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ME = userInfo().username
const CHAIN = `cli:${hostname()}`
const MASTER = 'CLI_AUDIT_MASTER_KEY'

let dir: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-cli-audit-'))
  upstream = await startUpstream()
  process.env[MASTER] = randomBytes(32).toString('base64')
})

afterAll(async () => {
  delete process.env[MASTER]
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

/** A config file in its own directory: API keys and secrets in SQLite, the audit log as given. */
async function configWith(name: string, audit: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const own = join(dir, name)
  await mkdir(own, { recursive: true })
  const file = join(own, 'bouncer.yaml')
  await writeFile(file, stringify({
    audit: { spill_dir: join(own, 'spill'), ...audit },
    api_keys: { store: { type: 'sqlite', path: join(own, 'keys.db') } },
    secrets: { store: { type: 'embedded', path: join(own, 'secrets.db'), master_key: `env:${MASTER}` } },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
    ...extra,
  }))
  return file
}

interface Run { code: number; stdout: string; stderr: string }

/** `bouncer ARGS` in this process: what it printed, and its exit code. */
function bouncer(...args: string[]): Promise<Run> {
  return runCliInProcess(args) as Promise<Run>
}

/**
 * Commands run at once in this process: what they printed, together, and the exit code (the last one
 * set). Not runCliInProcess, which runs one at a time: these race each other for the store on purpose.
 */
async function atOnce(commands: string[][]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const text = (parts: unknown[]) => `${parts.map(String).join(' ')}\n`
  const log = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void (stdout += text(parts)))
  const error = vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void (stderr += text(parts)))
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true))
  try {
    await Promise.all(commands.map((args) => main(['node', 'bouncer', ...args])))
    return { code: Number(process.exitCode ?? 0), stdout, stderr }
  } finally {
    process.exitCode = undefined
    log.mockRestore()
    error.mockRestore()
    write.mockRestore()
  }
}

const keyIdOf = (key: string) => /^bk_([0-9a-f]{16})_/.exec(key.trim())?.[1] as string
/** The ids of the keys printed. */
const keyIdsIn = (stdout: string) => [...stdout.matchAll(/^bk_([0-9a-f]{16})_/gm)].map((m) => m[1] as string)

/** The command line's records, oldest first. */
async function cliRecords(source: AuditSource): Promise<AuditRecord[]> {
  return (await searchAudit(source, { limit: 100, principal: ME })).filter((r) => r.instance === CHAIN).reverse()
}

describe('the command line\'s credential changes are audited', () => {
  it('SQLite: each change is a record naming the OS user, the command and the reason; verify passes, and fails once one is edited', async () => {
    const log = join(dir, 'sqlite', 'audit.db')
    const config = await configWith('sqlite', { sinks: [{ type: 'sqlite', path: log }] })
    const created = await bouncer('keys', 'create', '--config', config, '--principal', 'looker', '--reason', 'ticket OPS-7')
    expect(created).toMatchObject({ code: 0, stderr: expect.not.stringContaining('warning') })
    const id = keyIdOf(created.stdout)
    expect(await bouncer('keys', 'revoke', `bk_${id}`, '--config', config)).toMatchObject({ code: 0 })
    // Revoked again: nothing changes, nothing is recorded.
    expect(await bouncer('keys', 'revoke', id, '--config', config)).toMatchObject({ code: 0, stdout: expect.stringContaining('already revoked') })
    expect(await bouncer('secrets', 'rotate', 'bouncer.assertion-key', '--config', config, '--reason', 'yearly')).toMatchObject({ code: 0 })
    expect(await bouncer('secrets', 'delete', 'bouncer.assertion-key', '--config', config)).toMatchObject({ code: 0 })

    const source: AuditSource = { type: 'sqlite', path: log }
    const records = await cliRecords(source)
    expect(records.map((r) => r.path)).toEqual([
      'bouncer keys create --principal looker', `bouncer keys revoke ${id}`, 'bouncer secrets rotate bouncer.assertion-key', 'bouncer secrets delete bouncer.assertion-key',
    ])
    expect(records[0]).toMatchObject({
      method: 'CLI', status: 200, decision: 'allow', subject: ME, issuer: 'os', credential: 'os_user', client_id: id, instance: CHAIN, route: null,
      detail: `Created API key ${id} for principal looker (does not expire). Reason: ticket OPS-7`,
    })
    expect(records[1]).toMatchObject({ client_id: id, detail: `Revoked API key ${id} of principal looker.` })
    expect(records[2]?.detail).toMatch(/^Rotated secret bouncer\.assertion-key: version 1 is current.*Reason: yearly$/)
    // One chain, linked record to record; the whole key is never written.
    expect(records[0]?.prev_hash).toBe('0'.repeat(64))
    for (let i = 1; i < records.length; i++) expect(records[i]?.prev_hash).toBe(records[i - 1]?.hash)
    expect(JSON.stringify(records)).not.toContain(created.stdout.trim())

    expect(await bouncer('audit', '--config', config, '--principal', ME)).toMatchObject({ code: 0, stdout: expect.stringContaining(`CLI bouncer keys revoke ${id}`) })
    const verified = await bouncer('audit', 'verify', '--config', config)
    expect(verified).toMatchObject({ code: 0, stdout: expect.stringContaining('ok: 4 records in 1 chain verified') })

    const db = new DatabaseSync(log)
    db.prepare("UPDATE audit_records SET detail = 'Revoked nothing.' WHERE id = ?").run(records[1]?.id as string)
    db.close()
    expect(await bouncer('audit', 'verify', '--config', config)).toMatchObject({
      code: 1, stderr: expect.stringContaining(`audit log tampered: record ${records[1]?.id} (seq 2 of chain ${CHAIN}`),
    })
  })

  // The change chains had no signed checkpoint, by design: deleting a cli: chain's newest records
  // did not show (the brief's second task). Where the command can read the gateway's checkpoint key,
  // each record's new head is signed, in the sink's table and the checkpoint file.
  it('SQLite, the gateway\'s key readable: the chain is anchored, and its newest record deleted is named', async () => {
    const log = join(dir, 'sqlite-anchored', 'audit.db')
    const config = await configWith('sqlite-anchored', { sinks: [{ type: 'sqlite', path: log }] })
    await writeFile(`${log}.checkpoints.key`, newCheckpointKey(), { mode: 0o600 }) // as a gateway leaves it
    for (const principal of ['looker', 'tableau']) expect(await bouncer('keys', 'create', '--config', config, '--principal', principal)).toMatchObject({ code: 0, stderr: expect.not.stringContaining('warning') })
    expect(await bouncer('audit', 'verify', '--config', config)).toMatchObject({ code: 0, stdout: 'ok: 2 records in 1 chain verified\nanchored: 1 chain reaches its latest signed checkpoint\n' })

    const db = new DatabaseSync(log)
    db.exec('DELETE FROM audit_records WHERE seq = 2')
    db.close()
    const verify = await bouncer('audit', 'verify', '--config', config)
    expect(verify.code).toBe(1)
    expect(verify.stderr.split('\n')[0]).toMatch(new RegExp(`^audit log truncated: 1 record missing after record 1 of chain ${CHAIN}: the log ends at count 1 but the checkpoint at \\S+ says 2$`))
  })

  it('SQLite: two commands at once, in two processes, link one after the other', async () => {
    const log = join(dir, 'race', 'audit.db')
    const config = await configWith('race', { sinks: [{ type: 'sqlite', path: log }] })
    const create = (principal: string) => ['keys', 'create', '--config', config, '--principal', principal]
    // Another process, and this one: node:sqlite holds its thread, so two in one process never overlap.
    const other = runCli(create('other'), { timeout: 30_000 })
    const here = await bouncer(...create('here'))
    const runs = [await other, here]
    expect(runs.map((run) => run.code)).toEqual([0, 0])
    const records = await cliRecords({ type: 'sqlite', path: log })
    expect(records.map((r) => r.client_id).sort()).toEqual(runs.map((run) => keyIdOf(run.stdout)).sort())
    const result = await verifyAudit({ type: 'sqlite', path: log })
    expect(result).toMatchObject({ ok: true, checked: 2, chains: 1 })
  })

  it('PostgreSQL: commands at once are serialized by the chain\'s lock; search and verify read them', async () => {
    const schema = uniqueSchema('cli_audit')
    try {
      const config = await configWith('postgres', { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }] })
      // The gateway's key, readable: every writer at once also signs the head it wrote (table and file).
      const spill = join(dir, 'postgres', 'spill')
      await mkdir(spill, { recursive: true })
      await writeFile(join(spill, 'checkpoints.ndjson.key'), newCheckpointKey(), { mode: 0o600 })
      const run = await atOnce(['pg-one', 'pg-two', 'pg-three'].map((principal) => ['keys', 'create', '--config', config, '--principal', principal]))
      expect(run.code).toBe(0)
      const source: AuditSource = { type: 'postgres', url: SHARED_POSTGRES, schema }
      const records = await cliRecords(source)
      expect(records.map((r) => r.client_id).sort()).toEqual(keyIdsIn(run.stdout).sort())
      expect(records).toHaveLength(3)
      expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 3, chains: 1 })

      // Three writers whose appends start at the same moment (the commands above are staggered by
      // their config reads): each links after the one before, none is lost to the same seq.
      const audit = { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }], spill_dir: spill } as AuditConfig
      const logs = await Promise.all([1, 2, 3].map(() => openChangeLog(audit, CHAIN, changeSignerOf(audit, null))))
      try {
        await Promise.all(logs.map((changeLog, i) => changeLog?.append({
          id: randomUUID(), time: new Date().toISOString(), request_id: `race-${i}`, method: 'CLI', path: `race ${i}`, status: 200, decision: 'allow',
          subject: ME, roles: [], source_ip: '-', duration_ms: 0, bytes_in: 0, bytes_out: 0, instance: CHAIN,
        })))
      } finally {
        await Promise.all(logs.map((changeLog) => changeLog?.close()))
      }
      expect((await cliRecords(source)).map((r) => r.path).slice(3).sort()).toEqual(['race 0', 'race 1', 'race 2'])
      expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 6, chains: 1 })
      // The latest checkpoint is the last writer's head, whichever wrote last: the chain is anchored at 6.
      expect(await bouncer('audit', 'verify', '--config', config)).toMatchObject({ code: 0, stdout: 'ok: 6 records in 1 chain verified\nanchored: 1 chain reaches its latest signed checkpoint\n' })
      const client = new pg.Client({ connectionString: SHARED_POSTGRES })
      await client.connect()
      await client.query(`DELETE FROM ${schema}.audit_records WHERE seq = 6; DELETE FROM ${schema}.audit_head_checkpoints`)
      await client.end()
      const verify = await bouncer('audit', 'verify', '--config', config)
      expect(verify.code).toBe(1)
      expect(verify.stderr.split('\n')[0]).toMatch(new RegExp(`^audit log truncated: 1 record missing after record 5 of chain ${CHAIN}: the log ends at count 5 but the checkpoint at \\S+ says 6$`))
    } finally {
      await dropSchema(SHARED_POSTGRES, schema)
    }
  })

  it('a running gateway writing the same SQLite file goes on writing its own chain', async () => {
    const log = join(dir, 'shared', 'audit.db')
    const config = await configWith('shared', { sinks: [{ type: 'sqlite', path: log }], flush_interval: '10ms' })
    const gateway = await startTestGateway({
      audit: { sinks: [{ type: 'sqlite', path: log }], spill_dir: join(dir, 'shared', 'gateway-spill'), flush_interval: '10ms' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
    })
    const source: AuditSource = { type: 'sqlite', path: log }
    const gatewayRecords = async () => (await searchAudit(source, { limit: 1000, route: 'open' })).length
    try {
      let sent = 0
      const traffic = async (n: number) => {
        for (let i = 0; i < n; i++, sent++) expect((await request(`${gateway.url}/open`)).statusCode).toBe(200)
      }
      await traffic(5)
      const [created] = await Promise.all([bouncer('keys', 'create', '--config', config, '--principal', 'beside-gateway'), traffic(20)])
      expect(created.code).toBe(0)
      await traffic(5)
      await waitFor(async () => (await gatewayRecords()) === sent, 'every request\'s record')
      expect(await cliRecords(source)).toHaveLength(1)
      expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: sent + 1, chains: 2, problems: [] })
    } finally {
      await gateway.close()
    }
  })

  it('no sink that keeps records: the change is made, with a warning that it is not audited', async () => {
    for (const sinks of [[], [{ type: 'stdout' }]]) {
      const config = await configWith(`none-${sinks.length}`, { sinks })
      const created = await bouncer('keys', 'create', '--config', config, '--principal', 'unaudited')
      expect(created).toMatchObject({ code: 0, stderr: expect.stringContaining('warning: this change is NOT AUDITED') })
      expect(created.stdout).toMatch(/^bk_/)
    }
  })

  it('a sink that cannot be written: a new credential is refused, a revocation goes through with a warning', async () => {
    const unaudited = await configWith('broken-setup', { sinks: [] })
    const key = keyIdOf((await bouncer('keys', 'create', '--config', unaudited, '--principal', 'leaked')).stdout)
    // The same stores, and an audit log path that is a directory: SQLite cannot open it.
    const blocked = join(dir, 'broken-setup', 'audit-dir')
    await mkdir(blocked)
    const config = await configWith('broken-setup', { sinks: [{ type: 'sqlite', path: blocked }] })
    const refused = await bouncer('keys', 'create', '--config', config, '--principal', 'new')
    expect(refused).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining('nothing was changed: the audit sink sqlite:') })
    const listed = await bouncer('keys', 'list', '--config', config, '--json')
    expect(listed.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { principal: string }).principal)).toEqual(['leaked'])
    const revoked = await bouncer('keys', 'revoke', key, '--config', config)
    expect(revoked).toMatchObject({ code: 0, stderr: expect.stringContaining('warning: revoking anyway, WITHOUT AN AUDIT RECORD'), stdout: expect.stringContaining(`revoked API key ${key}`) })
  })

  it('a record the log refuses once the change is made: the command says the change was made, and fails', async () => {
    const log = join(dir, 'gone', 'audit.db')
    const trail = await openChangeTrail(await loadCommandConfig(await configWith('gone', { sinks: [{ type: 'sqlite', path: log }] })), undefined, { revoking: false })
    try {
      await rm(log) // between the change and its record
      await expect(trail.record({ command: 'bouncer keys create --principal x', detail: 'Created.' })).rejects.toThrow(/^the change WAS MADE, but its audit record was not written: the audit sink sqlite:.* was deleted/)
    } finally {
      await trail.close()
    }
  })
})
