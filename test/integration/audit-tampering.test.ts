// Found by an adversarial probe (helper): a lone UTF-16 surrogate in a client value (an unsigned token's iss, quoted in the refusal) broke the chain as stored; rows under a chain number audit_chains does not name, and a time_ms moved away from the hashed time, went unseen by verify.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyAudit } from '../../src/audit/verify.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'
import { testCutSigner } from '../helpers/audit.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'

let dir: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-tampering-'))
  upstream = await startUpstream(async (_req, res) => { res.end('ok') })
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url')
// The JSON text carries the escape \ud800 (ASCII): JSON.parse gives a lone surrogate.
const loneSurrogateToken = () => `${b64('{"alg":"RS256","typ":"at+jwt","kid":"k"}')}.${b64('{"iss":"https://evil\\ud800.example/","sub":"x","aud":"a","exp":9999999999}')}.${b64('sig')}`

async function gatewayWith(sinks: object[], own: string) {
  return startTestGateway({
    audit: { sinks, spill_dir: join(own, 'spill'), flush_interval: '10ms' },
    issuers: [{ name: 'corp', issuer: 'https://sso.example.com/', audiences: ['a'], jwks_uri: `${upstream.url}/jwks` }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }, { id: 'closed', path: '/closed', upstream: 'api' }],
  })
}

/** A PostgreSQL log of `records` genuine records (verified whole), edited by `edit`'s SQL, then verified again. */
async function pgLogEdited(name: string, records: number, edit: (schema: string) => string) {
  const own = await mkdtemp(join(dir, `${name}-`))
  const schema = uniqueSchema(name)
  try {
    const gw = await gatewayWith([{ type: 'postgres', url: SHARED_POSTGRES, schema }], own)
    for (let i = 0; i < records; i++) await (await request(`${gw.url}/open/${i}`)).body.dump()
    await gw.close()
    expect((await verifyAudit({ type: 'postgres', url: SHARED_POSTGRES, schema })).ok).toBe(true)
    const client = new pg.Client({ connectionString: SHARED_POSTGRES })
    await client.connect()
    try {
      await client.query(edit(schema))
    } finally {
      await client.end()
    }
    return await verifyAudit({ type: 'postgres', url: SHARED_POSTGRES, schema })
  } finally {
    await dropSchema(SHARED_POSTGRES, schema)
  }
}

describe('client values that are not valid UTF-16', () => {
  it('SQLite: an unauthenticated token whose iss holds a lone surrogate does not break the chain', async () => {
    const own = await mkdtemp(join(dir, 'sur-'))
    const path = join(own, 'audit.db')
    const gw = await gatewayWith([{ type: 'sqlite', path }], own)
    await (await request(`${gw.url}/open/1`)).body.dump()
    const res = await request(`${gw.url}/closed`, { headers: { authorization: `Bearer ${loneSurrogateToken()}` } })
    await res.body.dump()
    expect(res.statusCode).toBe(401)
    await (await request(`${gw.url}/open/2`)).body.dump()
    await gw.close()
    const file = join(own, 'bouncer.yaml')
    await writeFile(file, stringify({ audit: { sinks: [{ type: 'sqlite', path }], spill_dir: join(own, 'spill') } }))
    const records = await searchAudit({ type: 'sqlite', path }, { limit: 10 })
    expect(records).toHaveLength(3)
    const verify = await runCliInProcess(['audit', 'verify', '--config', file])
    expect(verify.stderr).toBe('')
    expect(verify.code).toBe(0)
  })

  it('PostgreSQL: the same token does not break the chain', async () => {
    const own = await mkdtemp(join(dir, 'surpg-'))
    const schema = uniqueSchema('surrogate')
    try {
      const gw = await gatewayWith([{ type: 'postgres', url: SHARED_POSTGRES, schema }], own)
      await (await request(`${gw.url}/open/1`)).body.dump()
      const res = await request(`${gw.url}/closed`, { headers: { authorization: `Bearer ${loneSurrogateToken()}` } })
      await res.body.dump()
      expect(res.statusCode).toBe(401)
      await (await request(`${gw.url}/open/2`)).body.dump()
      await gw.close()
      const result = await verifyAudit({ type: 'postgres', url: SHARED_POSTGRES, schema })
      expect(result.problems).toEqual([])
      expect(result).toMatchObject({ ok: true, checked: 3 })
    } finally {
      await dropSchema(SHARED_POSTGRES, schema)
    }
  })
})

// Found by the audit probe: a record copied under its own seq, once the primary key was dropped,
// was named as "record 4 before it is missing (deleted)": a gap, where nothing was deleted.
describe('a duplicated record', () => {
  it('PostgreSQL: the copy is named as a seq that comes again, not as a missing record', async () => {
    const result = await pgLogEdited('duplicate', 5, (schema) => `ALTER TABLE ${schema}.audit_records DROP CONSTRAINT audit_records_pkey;
      INSERT INTO ${schema}.audit_records SELECT * FROM ${schema}.audit_records WHERE seq = 3`)
    expect(result.ok).toBe(false)
    expect(result.problems).toEqual([expect.objectContaining({ seq: 3, reason: 'its seq 3 comes again after record 3 (a record was duplicated or renumbered)' })])
  })
})

describe('stored columns the hash does not cover', () => {
  it('SQLite: time_ms moved so a record drops out of --since searches is detected by verify', async () => {
    const own = await mkdtemp(join(dir, 'tms-'))
    const path = join(own, 'audit.db')
    const gw = await gatewayWith([{ type: 'sqlite', path }], own)
    for (let i = 0; i < 3; i++) await (await request(`${gw.url}/open/${i}`)).body.dump()
    await waitFor(async () => (await searchAudit({ type: 'sqlite', path }, { limit: 10 }).catch(() => [])).length === 3, 'records')
    await gw.close()
    const database = new DatabaseSync(path)
    // The record stays, its hashed `time` stays; only the unhashed index column moves 10 years back.
    database.exec('UPDATE audit_records SET time_ms = time_ms - 315360000000 WHERE seq = 2')
    database.close()
    const file = join(own, 'bouncer.yaml')
    await writeFile(file, stringify({ audit: { sinks: [{ type: 'sqlite', path }], spill_dir: join(own, 'spill') } }))
    const search = await runCliInProcess(['audit', '--since', '1h', '--json', '--config', file])
    const shown = search.stdout.trim().split('\n').filter(Boolean).length
    const verify = await runCliInProcess(['audit', 'verify', '--config', file])
    // Either the search still shows the record, or verify says the log was tampered with.
    expect(shown === 3 || verify.code === 1, `search shows ${shown} of 3 records; verify: ${verify.code} ${verify.stdout}`).toBe(true)
  })

  it('PostgreSQL: time moved by less than a millisecond (read back to the millisecond) is detected by verify', async () => {
    // 0.6 ms later: a search bounded at the record's own millisecond no longer finds it.
    const result = await pgLogEdited('subms', 3, (schema) => `UPDATE ${schema}.audit_records SET time = time + interval '600 microseconds' WHERE seq = 2`)
    expect(result.ok).toBe(false)
    expect(result.problems).toEqual([expect.objectContaining({ seq: 2, reason: 'its time holds 600 µs past the millisecond it was written with (the row was edited)' })])
  })
})

describe('rows verify never walks', () => {
  it('SQLite: a fabricated record in a chain number audit_chains does not list shows in search, and verify still says ok', async () => {
    const own = await mkdtemp(join(dir, 'orphan-'))
    const path = join(own, 'audit.db')
    const gw = await gatewayWith([{ type: 'sqlite', path }], own)
    for (let i = 0; i < 3; i++) await (await request(`${gw.url}/open/${i}`)).body.dump()
    await waitFor(async () => (await searchAudit({ type: 'sqlite', path }, { limit: 10 }).catch(() => [])).length === 3, 'records')
    await gw.close()
    const database = new DatabaseSync(path)
    // A fabricated record: a copy of a real row, in chain 99 (never registered), saying someone else was allowed in.
    database.exec(`CREATE TEMP TABLE forged AS SELECT * FROM audit_records WHERE seq = 2;
      UPDATE forged SET chain = 99, seq = 1, id = 'f0f0f0f0-0000-4000-8000-000000000000', subject = 'alice', path = '/open/forged';
      INSERT INTO audit_records SELECT * FROM forged;`)
    database.close()
    const file = join(own, 'bouncer.yaml')
    await writeFile(file, stringify({ audit: { sinks: [{ type: 'sqlite', path }], spill_dir: join(own, 'spill') } }))
    const search = await runCliInProcess(['audit', '--json', '--config', file])
    expect(search.stdout).toContain('/open/forged') // the console, search and export show it
    const verify = await runCliInProcess(['audit', 'verify', '--config', file])
    expect(verify.code, `verify: ${verify.stdout}${verify.stderr}`).toBe(1)

    // Retention signs each chain's cut by its name: the stray, which has none, is left for verify to
    // name, and does not hold up the chains' own cut (it threw, and every run rolled back).
    const sink = createSqliteSink(path, { durable: false })
    await sink.open()
    try {
      expect(await sink.deleteBefore(Date.now() + 60_000, testCutSigner())).toBe(3)
    } finally {
      await sink.close()
    }
    const left = new DatabaseSync(path, { readOnly: true })
    expect(left.prepare('SELECT chain, seq FROM audit_records').all()).toEqual([{ chain: 99, seq: 1 }])
    left.close()
  }, 30_000)
})

describe('a poisoned head record', () => {
  it('SQLite: a gateway restarted right after the lone-surrogate request continues its chain (no chain_restarted)', async () => {
    const own = await mkdtemp(join(dir, 'head-'))
    const path = join(own, 'audit.db')
    const gw = await gatewayWith([{ type: 'sqlite', path }], own)
    await (await request(`${gw.url}/open/1`)).body.dump()
    await (await request(`${gw.url}/closed`, { headers: { authorization: `Bearer ${loneSurrogateToken()}` } })).body.dump()
    await gw.close()
    const again = await gatewayWith([{ type: 'sqlite', path }], own)
    await (await request(`${again.url}/open/2`)).body.dump()
    await again.close()
    const records = await searchAudit({ type: 'sqlite', path }, { limit: 10 })
    expect(records.map((r) => r.code)).not.toContain('chain_restarted')
    expect(new Set(records.map((r) => r.instance)).size).toBe(1)
  }, 30_000)
})
