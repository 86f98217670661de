// Found by an adversarial probe (helper): hostile search filters against the PostgreSQL log (a status past 32 bits was a 500), and a log whose schema no gateway has created yet.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { writeFile } from 'node:fs/promises'
import { stringify } from 'yaml'
import { searchAudit } from '../../src/audit/search.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { waitFor } from '../helpers/wait.ts'
import pg from 'pg'

async function pgQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: SHARED_POSTGRES })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

const ADMIN = 'audit-search-pg-admin-token-0123456789'
let dir: string
let upstream: TestUpstream
let gw: TestGateway
const schema = uniqueSchema('pgsearch')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-search-pg-'))
  upstream = await startUpstream(async (_req, res) => { res.end('ok') })
  gw = await startTestGateway({
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open/*', upstream: 'api', public: true }],
  })
  await (await request(`${gw.url}/open/1`)).body.dump()
  await waitFor(async () => (await searchAudit({ type: 'postgres', url: SHARED_POSTGRES, schema }, { limit: 5 }).catch(() => [])).length === 1, 'the record')
})
afterAll(async () => {
  await gw.close()
  await upstream.close()
  await dropSchema(SHARED_POSTGRES, schema)
  await rm(dir, { recursive: true, force: true })
})

describe('GET /api/audit on PostgreSQL', () => {
  for (const query of ['status=3000000000', 'since=0001-01-01T00:00:00Z', 'until=275760-09-13T00:00:00Z']) {
    it(`${query}: a client error or an answer, not a 500`, async () => {
      const res = await request(`${gw.adminUrl}/api/audit?${query}`, { headers: { authorization: `Bearer ${ADMIN}` } })
      const body = await res.body.text()
      expect(res.statusCode, `${body}\n${gw.logs.filter((l) => l.includes('"level":50') || l.includes('error')).slice(-2).join('')}`).toBeLessThan(500)
    })
  }
})

// Found by the audit probe: the command line's --limit has no upper bound, and 99999999999999999999
// was bound as 1e20: "internal error: value … is out of range for type bigint" here, and of a SQLite
// log "datatype mismatch (damaged, or not an audit log?)". A usage error: exit 2, before the log is read.
describe('bouncer audit --limit past what a number holds exactly', () => {
  it('is a usage error (exit 2), for PostgreSQL and SQLite alike; so is a limit that is not digits', async () => {
    const files = { postgres: join(dir, 'limit-pg.yaml'), sqlite: join(dir, 'limit-sqlite.yaml') }
    await writeFile(files.postgres, stringify({ audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }] } }))
    await writeFile(files.sqlite, stringify({ audit: { sinks: [{ type: 'sqlite', path: join(dir, 'limit.db') }] } }))
    for (const [kind, file] of Object.entries(files)) {
      for (const limit of ['99999999999999999999', '0x10']) {
        const cli = await runCliInProcess(['audit', '--config', file, '--limit', limit])
        expect(cli, `${kind} --limit ${limit}`).toEqual({ code: 2, stdout: '', stderr: 'bouncer: --limit must be a whole number from 1\n' })
      }
    }
    const ok = await runCliInProcess(['audit', '--config', files.postgres, '--limit', '9007199254740991', '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout.trim().split('\n')).toHaveLength(1)
  })
})

// Found by the audit probe: a role PostgreSQL does not know, or one that may not read the schema,
// was "bouncer: internal error: …", the gateway's bug by its words, where the config or the grants are wrong.
describe('a PostgreSQL log this role cannot read', () => {
  it('is said as the audit log that cannot be read, for search and verify alike', async () => {
    const role = `bouncer_noaccess_${process.pid}`
    await pgQuery(`CREATE ROLE ${role} LOGIN`)
    try {
      const cases: Array<[string, string]> = [['nosuchrole', 'role "nosuchrole" does not exist'], [role, `permission denied for schema ${schema}`]]
      for (const [user, reason] of cases) {
        const url = new URL(SHARED_POSTGRES)
        url.username = user
        const file = join(dir, `${user}.yaml`)
        await writeFile(file, stringify({ audit: { sinks: [{ type: 'postgres', url: url.href, schema }] } }))
        for (const args of [['audit'], ['audit', 'verify']]) {
          expect(await runCliInProcess([...args, '--config', file]), `${user} ${args.join(' ')}`).toEqual({ code: 1, stdout: '', stderr: `bouncer: cannot read the audit log: ${reason}\n` })
        }
      }
    } finally {
      await pgQuery(`DROP ROLE ${role}`)
    }
  })
})

describe('a PostgreSQL log with no records yet', () => {
  it('bouncer audit says so (as for SQLite), with no stack trace, before any gateway created the schema', async () => {
    const fresh = uniqueSchema('pgnone')
    const file = join(dir, 'none.yaml')
    await writeFile(file, stringify({ audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema: fresh }] } }))
    const cli = await runCliInProcess(['audit', '--config', file])
    expect(cli.stderr).toContain('no records yet')
    const api = await runCliInProcess(['audit', 'verify', '--config', file])
    expect(api.stderr).not.toMatch(/\n\s+at /)
  })
})
