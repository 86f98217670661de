// Why an audit log could not be read, when that is the log's or its server's doing and not the
// gateway's: a PostgreSQL server that is not there, does not answer or went away, a read ended at
// read_timeout, a SQLite file another process holds locked or that is no database. `bouncer audit`
// says it as the user's to fix (cli/audit.ts), the admin API as 503 audit_unavailable
// (side-thread.ts): both said "internal error", the gateway's bug by their words.
import { SQLITE, sqliteCode } from '../collections/index.ts'
import type { AuditSource } from './search.ts'

/** A connection to PostgreSQL refused, unresolved, lost or reset, as the system names it. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN'])

/** pg's own words for a server that did not answer in time, or a connection that ended. */
const CONNECTION_LOST = /^(timeout expired|Query read timeout|Connection terminated)/

/** Where the server is, without the URL's user and password. */
function serverOf(url: string): string {
  try {
    return new URL(url).host || 'the configured host'
  } catch {
    return 'the configured host'
  }
}

/** Why a PostgreSQL log could not be read (pg's words, and what they likely mean), or null. */
export function postgresUnreadable(source: Extract<AuditSource, { type: 'postgres' }>, err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code
  const message = (err as Error | null)?.message ?? String(err)
  if ((typeof code === 'string' && UNREACHABLE_CODES.has(code)) || CONNECTION_LOST.test(message)) {
    return `${message} (PostgreSQL at ${serverOf(source.url)}: not reachable, or it went away)`
  }
  // A read ended at the sink's read_timeout: a table another session holds locked, a server too slow.
  if (code === '57014') {
    const bound = source.readTimeoutMs === undefined ? '' : `, ${source.readTimeoutMs / 1000} s`
    return `${message} (the sink's read_timeout${bound}: is the table locked, or the server overloaded?)`
  }
  // No such database, no right to read the schema, a role the server does not know or lets not in.
  if (code === '3D000' || code === '42P01' || code === '42501' || (typeof code === 'string' && code.startsWith('28'))) return message
  return null
}

/** Why a SQLite log could not be read (SQLite's words, and what they likely mean), or null. */
export function sqliteUnreadable(err: unknown): string | null {
  const message = (err as Error | null)?.message ?? String(err)
  switch (sqliteCode(err)) {
    case SQLITE.BUSY:
    case SQLITE.LOCKED:
      return `${message} (another process holds it locked: try again once it lets go)`
    case SQLITE.CORRUPT:
    case SQLITE.NOTADB:
      return `${message} (damaged, or not an audit log?)`
    case SQLITE.CANTOPEN:
    case SQLITE.PERM:
    case SQLITE.READONLY:
    case SQLITE.IOERR:
      return message
    default:
      return null
  }
}

/** Either, by the source's kind. */
export function unreadableLog(source: AuditSource, err: unknown): string | null {
  return source.type === 'postgres' ? postgresUnreadable(source, err) : sqliteUnreadable(err)
}
