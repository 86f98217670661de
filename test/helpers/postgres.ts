// PostgreSQL for tests: the machine's shared server (database `test`, one schema per test), and a
// private server on a free port that a test may stop and restart (an outage). The private one
// runs as the `postgres` user, as PostgreSQL refuses to run as root.
import { execFileSync } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { closedPort } from './faults.ts'

export const SHARED_POSTGRES = 'postgres://postgres@127.0.0.1:5432/test'

export function uniqueSchema(name: string): string {
  return `bouncer_test_${name}_${process.pid}_${Date.now() % 1_000_000}`
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await client.end()
}

/** The records in a schema's audit table (-1 while the server or the table cannot be read). */
export async function auditRecordCount(url: string, schema: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  try {
    await client.connect()
    return Number((await client.query(`SELECT count(*) AS n FROM ${schema}.audit_records`)).rows[0].n)
  } catch {
    return -1
  } finally {
    await client.end().catch(() => {})
  }
}

export interface PrivatePostgres {
  url: string
  stop(): Promise<void>
  start(): Promise<void>
  destroy(): Promise<void>
}

const BIN = `/usr/lib/postgresql/${readdirSync('/usr/lib/postgresql').sort().at(-1)}/bin`

export async function startPostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-pg-'))
  chownSync(dir, uidOf('postgres'), gidOf('postgres'))
  const port = await closedPort()
  const data = join(dir, 'data')
  const asPostgres = (args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'ignore' })
  asPostgres([`${BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres'])
  const start = async () => {
    asPostgres([`${BIN}/pg_ctl`, '-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, '-l', join(dir, 'log'), '-w', 'start'])
  }
  await start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop']) // like a crash
    },
    start,
    async destroy() {
      try {
        asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop'])
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user]).toString().trim())
}

function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user]).toString().trim())
}
