// Human approval for tool calls that matter (mcp.approvals). A matching call is not run: it gets a
// pending approval (id, expiry) that an approver — a caller holding one of the rule's `approvers`
// roles — approves or denies (`bouncer approvals`, the admin API). The same caller then repeating
// the same call (same tool, same argument digest) runs it, once, before the approval expires:
// taking it is one UPDATE … WHERE status = 'approved', so two racing calls cannot both run it, even
// across gateways sharing the file. Denied and expired approvals are final.
//
// SQLite (node:sqlite, WAL) by default, one file several instances on one host can share.
import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import type { Approval, ApprovalStatus } from './approval-shapes.ts'

export type { Approval, ApprovalStatus } from './approval-shapes.ts'

export interface NewApproval {
  tool: string
  /** The provider that vouched for the subject (subjectIssuer), the subject, and the agent acting for it (actorOf) or null. */
  issuer: string
  subject: string
  actor: string | null
  argsSha256: string
  approvers: readonly string[]
  ttlMs: number
}

export type Decision = 'approve' | 'deny'

export type DecideResult = { ok: true; approval: Approval } | { ok: false; reason: 'not_found' | 'final'; approval: Approval | null }

export interface ApprovalStore {
  readonly location: string
  /** The open pending approval for exactly this call, or a new one. */
  request(call: NewApproval, now?: number): Approval
  /** Takes an approved, unexpired approval for exactly this call (at most once); null when there is none. */
  take(call: Omit<NewApproval, 'approvers' | 'ttlMs'>, now?: number): Approval | null
  get(id: string, now?: number): Approval | null
  list(filter?: { status?: ApprovalStatus }, now?: number): Approval[]
  decide(id: string, decision: Decision, by: string, now?: number): DecideResult
  close(): void
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, tool TEXT NOT NULL, issuer TEXT NOT NULL, subject TEXT NOT NULL, args_sha256 TEXT NOT NULL,
    approvers TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    decided_by TEXT, decided_at INTEGER
  );
  CREATE INDEX IF NOT EXISTS approvals_call ON approvals (tool, subject, args_sha256, status);
`

/** A store made before approvals named the acting agent gets the column (its approvals were asked for by no agent). */
function addActor(db: DatabaseSync): void {
  const columns = db.prepare('PRAGMA table_info(approvals)').all() as Array<{ name: string }>
  if (columns.some((column) => column.name === 'actor')) return
  try {
    db.exec('ALTER TABLE approvals ADD COLUMN actor TEXT')
  } catch (err) {
    if (!/duplicate column/i.test((err as Error).message)) throw err
  }
}

interface Row {
  id: string
  tool: string
  issuer: string
  subject: string
  actor: string | null
  args_sha256: string
  approvers: string
  status: ApprovalStatus
  created_at: number
  expires_at: number
  decided_by: string | null
  decided_at: number | null
}

export class ApprovalStoreError extends Error {
  override name = 'ApprovalStoreError'
}

export function openApprovalStore(path: string): ApprovalStore {
  let db: DatabaseSync
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000')
    db.exec(SCHEMA)
    addActor(db)
  } catch (err) {
    throw new ApprovalStoreError(`cannot open the approvals store ${path}: ${(err as Error).message}`, { cause: err })
  }
  const byId = db.prepare('SELECT * FROM approvals WHERE id = ?')
  const openFor = db.prepare(`SELECT * FROM approvals WHERE tool = ? AND issuer = ? AND subject = ? AND actor IS ? AND args_sha256 = ? AND status = 'pending' AND expires_at > ? ORDER BY created_at DESC LIMIT 1`)
  const approvedFor = db.prepare(`SELECT id FROM approvals WHERE tool = ? AND issuer = ? AND subject = ? AND actor IS ? AND args_sha256 = ? AND status = 'approved' AND expires_at > ? ORDER BY created_at LIMIT 1`)
  const use = db.prepare(`UPDATE approvals SET status = 'used' WHERE id = ? AND status = 'approved' AND expires_at > ?`)
  const insert = db.prepare('INSERT INTO approvals (id, tool, issuer, subject, actor, args_sha256, approvers, status, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, \'pending\', ?, ?)')
  const expire = db.prepare(`UPDATE approvals SET status = 'expired' WHERE status IN ('pending', 'approved') AND expires_at <= ?`)
  const decide = db.prepare('UPDATE approvals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = \'pending\' AND expires_at > ?')
  const all = db.prepare('SELECT * FROM approvals ORDER BY created_at DESC LIMIT 1000')
  const withStatus = db.prepare('SELECT * FROM approvals WHERE status = ? ORDER BY created_at DESC LIMIT 1000')

  const read = (id: string, now: number): Approval | null => {
    expire.run(now)
    const row = byId.get(id) as Row | undefined
    return row ? fromRow(row) : null
  }

  return {
    location: path,
    request(call, now = Date.now()) {
      expire.run(now)
      const open = openFor.get(call.tool, call.issuer, call.subject, call.actor, call.argsSha256, now) as Row | undefined
      if (open) return fromRow(open)
      const id = randomUUID()
      insert.run(id, call.tool, call.issuer, call.subject, call.actor, call.argsSha256, JSON.stringify(call.approvers), now, now + call.ttlMs)
      return read(id, now) as Approval
    },
    take(call, now = Date.now()) {
      const found = approvedFor.get(call.tool, call.issuer, call.subject, call.actor, call.argsSha256, now) as { id: string } | undefined
      if (!found) return null
      // The one place a call is let through: only the UPDATE that changed the row runs it.
      if (Number(use.run(found.id, now).changes) !== 1) return null
      return read(found.id, now)
    },
    get: (id, now = Date.now()) => read(id, now),
    list(filter = {}, now = Date.now()) {
      expire.run(now)
      const rows = (filter.status ? withStatus.all(filter.status) : all.all()) as unknown as Row[]
      return rows.map(fromRow)
    },
    decide(id, decision, by, now = Date.now()) {
      const changed = Number(decide.run(decision === 'approve' ? 'approved' : 'denied', by, now, id, now).changes)
      const approval = read(id, now)
      if (changed === 1 && approval) return { ok: true, approval }
      return { ok: false, reason: approval ? 'final' : 'not_found', approval }
    },
    close: () => db.close(),
  }
}

function fromRow(row: Row): Approval {
  return {
    id: row.id,
    tool: row.tool,
    issuer: row.issuer,
    subject: row.subject,
    actor: row.actor ?? null,
    args_sha256: row.args_sha256,
    approvers: JSON.parse(row.approvers) as string[],
    status: row.status,
    created_at: new Date(row.created_at).toISOString(),
    expires_at: new Date(row.expires_at).toISOString(),
    decided_by: row.decided_by,
    decided_at: row.decided_at === null ? null : new Date(row.decided_at).toISOString(),
  }
}
