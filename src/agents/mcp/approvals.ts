// Human approval for tool calls that matter (mcp.approvals). A matching call is not run: it gets a
// pending approval (id, expiry) that an approver — a caller holding one of the rule's `approvers`
// roles — approves or denies (`bouncer approvals`, the admin API). The same caller then repeating
// the same call (same tool, same argument digest) runs it, once, before the approval expires:
// taking it is one UPDATE … WHERE status = 'approved', so two racing calls cannot both run it, even
// across gateways sharing the file; a call taken that then never ran gives it back (giveBack).
// Denied and expired approvals are final. An approval counts while a role that decided it is among
// the approvers the tool's rule names now: a reload that takes that role out leaves it unused, and
// the call is held again (take).
//
// SQLite (node:sqlite, WAL) by default, one file several instances on one host can share. While
// another of them holds the write lock, a call waits on timers (whenUnlocked), not in SQLite's busy
// handler, which would hold the event loop and every request with it.
import { randomUUID } from 'node:crypto'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { addMissingColumns, inTransaction, makeDirectories, storeFile, switchToWal, whenUnlocked } from '../../collections/index.ts'
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

/** A call taking its approval: `approvers` are those its tool's rule names now (the running config). */
export type ApprovalCall = Omit<NewApproval, 'ttlMs'>

/** The approved approval taken for the call; or none, with why an approved one for it does not count (null: there is none). */
export type Taken = { approval: Approval; untrusted: null } | { approval: null; untrusted: string | null }

export type Decision = 'approve' | 'deny'

/** Who decided: `name` as decided_by shows it, and those of their roles among the approvers then. */
export interface Decider {
  name: string
  roles: readonly string[]
}

export type DecideResult = { ok: true; approval: Approval } | { ok: false; reason: 'not_found' | 'final'; approval: Approval | null }

/**
 * Pending approvals one caller (subject and agent) may hold at once. A route tool's held calls count
 * against its route's limits, a server's tool's against nothing: a looping agent filed them without
 * end, each one more for the approvers to read.
 */
export const MAX_PENDING_PER_CALLER = 100

export interface ApprovalStore {
  readonly location: string
  /** The open pending approval for exactly this call, or a new one; null when the caller holds MAX_PENDING_PER_CALLER already. */
  request(call: NewApproval, now?: number): Promise<Approval | null>
  /**
   * Takes an approved, unexpired approval for exactly this call (at most once), decided by a role
   * among `call.approvers`; else none, saying why an approved one passed over does not count.
   */
  take(call: ApprovalCall, now?: number): Promise<Taken>
  /**
   * Makes a taken approval usable again, until its expiry, when the call it let through never ran
   * (refused by the route's limits, its upstream or server unreachable). False when it had expired.
   */
  giveBack(id: string, now?: number): Promise<boolean>
  get(id: string, now?: number): Promise<Approval | null>
  list(filter?: { status?: ApprovalStatus }, now?: number): Promise<Approval[]>
  decide(id: string, decision: Decision, by: Decider, now?: number): Promise<DecideResult>
  close(): void
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, tool TEXT NOT NULL, issuer TEXT NOT NULL, subject TEXT NOT NULL, args_sha256 TEXT NOT NULL,
    approvers TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    decided_by TEXT, decided_at INTEGER
  );
  CREATE INDEX IF NOT EXISTS approvals_call ON approvals (tool, subject, args_sha256, status);
  CREATE INDEX IF NOT EXISTS approvals_caller ON approvals (subject, issuer, status);
`

/** How long a call waits for another process's write lock before it fails. */
const LOCK_WAIT_MS = 5_000

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
  /** JSON: the decider's roles among the approvers when they decided; NULL in a row decided before the column. */
  decided_roles: string | null
}

export class ApprovalStoreError extends Error {
  override name = 'ApprovalStoreError'
}

export function openApprovalStore(path: string): ApprovalStore {
  let db: DatabaseSync | undefined
  try {
    if (path !== ':memory:') makeDirectories(dirname(path))
    db = new DatabaseSync(path)
    // Opening may wait in SQLite's busy handler (once, on first use); the calls below never do.
    db.exec('PRAGMA busy_timeout = 5000')
    switchToWal(db) // the change to WAL does not wait in the busy handler
    db.exec(SCHEMA)
    // A store made before approvals named the acting agent: its approvals were asked for by no agent.
    // One made before approvals kept the deciding roles: its decided rows have NULL (take honours them).
    addMissingColumns(db, 'approvals', [{ name: 'actor', definition: 'actor TEXT' }, { name: 'decided_roles', definition: 'decided_roles TEXT' }])
    db.exec('PRAGMA busy_timeout = 0')
  } catch (err) {
    // Opened again at the next call that needs it: a store that fails here kept a file open each time.
    if (db?.isOpen) db.close()
    throw new ApprovalStoreError(`cannot open the approvals store ${path}: ${(err as Error).message}`, { cause: err })
  }
  const { prepare } = storeFile(db, path, { the: 'the approvals store', a: 'an approvals store' }, (message, cause) => new ApprovalStoreError(message, { cause }))
  const byId = prepare('SELECT * FROM approvals WHERE id = ?')
  /** Exactly this call (tool, caller, arguments), of this status, unexpired: bound as callOf gives them. */
  const theCall = 'tool = ? AND issuer = ? AND subject = ? AND actor IS ? AND args_sha256 = ? AND status = ? AND expires_at > ?'
  const openFor = prepare(`SELECT * FROM approvals WHERE ${theCall} ORDER BY created_at DESC LIMIT 1`)
  // NULL decided_roles (decided before the column, or by an instance of an earlier version sharing the
  // file) are honoured, as they were: such approvals last one ttl, and holding them all at the upgrade
  // would have stopped every approved call, and every one a not yet upgraded instance approves.
  const approvedFor = prepare(`SELECT id FROM approvals WHERE ${theCall}
    AND (decided_roles IS NULL OR EXISTS (SELECT 1 FROM json_each(decided_roles) AS d, json_each(?) AS a WHERE d.value = a.value)) ORDER BY created_at LIMIT 1`)
  // With none of those, any approved one left for the call was decided by roles the rule dropped.
  const untrustedFor = prepare(`SELECT * FROM approvals WHERE ${theCall} ORDER BY created_at DESC LIMIT 1`)
  const pendingOf = prepare(`SELECT count(*) AS n FROM approvals WHERE issuer = ? AND subject = ? AND actor IS ? AND status = 'pending' AND expires_at > ?`)
  const use = prepare(`UPDATE approvals SET status = 'used' WHERE id = ? AND status = 'approved' AND expires_at > ?`)
  const unuse = prepare(`UPDATE approvals SET status = 'approved' WHERE id = ? AND status = 'used' AND expires_at > ?`)
  const insert = prepare('INSERT INTO approvals (id, tool, issuer, subject, actor, args_sha256, approvers, status, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, \'pending\', ?, ?)')
  const expire = prepare(`UPDATE approvals SET status = 'expired' WHERE status IN ('pending', 'approved') AND expires_at <= ?`)
  const decide = prepare('UPDATE approvals SET status = ?, decided_by = ?, decided_roles = ?, decided_at = ? WHERE id = ? AND status = \'pending\' AND expires_at > ?')
  const all = prepare('SELECT * FROM approvals ORDER BY created_at DESC LIMIT 1000')
  const withStatus = prepare('SELECT * FROM approvals WHERE status = ? ORDER BY created_at DESC LIMIT 1000')

  const failed = (err: unknown) => new ApprovalStoreError(`the approvals store ${path} failed: ${(err as Error).message}`, { cause: err })
  const guard = <T>(work: () => T): Promise<T> => Promise.resolve(whenUnlocked(work, LOCK_WAIT_MS, failed))
  const read = (id: string, now: number): Promise<Approval | null> =>
    guard(() => {
      expire.run(now)
      const row = byId.get(id) as Row | undefined
      return row ? fromRow(row) : null
    })

  return {
    location: path,
    async request(call, now = Date.now()) {
      // One unit, tried again whole: until the INSERT commits, nothing of it has happened.
      // In one write transaction: two workers filing at once could each find no open approval, or
      // a count under the cap, and both insert (found by review).
      return await guard(() => {
        const filed = inTransaction(db, (): Row | null => {
          expire.run(now)
          const open = openFor.get(...callOf(call, 'pending', now)) as Row | undefined
          if (open) return open
          if (Number((pendingOf.get(call.issuer, call.subject, call.actor, now) as { n: number }).n) >= MAX_PENDING_PER_CALLER) return null
          const id = randomUUID()
          insert.run(id, call.tool, call.issuer, call.subject, call.actor, call.argsSha256, JSON.stringify(call.approvers), now, now + call.ttlMs)
          return byId.get(id) as unknown as Row
        })
        return filed === null ? null : fromRow(filed)
      })
    },
    async take(call, now = Date.now()): Promise<Taken> {
      // The one place a call is let through: only the UPDATE that changed the row runs it. An
      // approval decided by roles a reload took out of the rule is left approved, not used: it
      // counts again if a later config names one of them, until it expires.
      const taken = await guard((): { id: string } | { untrusted: Row | null } => {
        const key = callOf(call, 'approved', now)
        const found = approvedFor.get(...key, JSON.stringify(call.approvers)) as { id: string } | undefined
        if (found && Number(use.run(found.id, now).changes) === 1) return { id: found.id }
        return { untrusted: found ? null : ((untrustedFor.get(...key) as Row | undefined) ?? null) }
      })
      if ('untrusted' in taken) return { approval: null, untrusted: taken.untrusted && untrustedSaid(taken.untrusted) }
      const approval = await read(taken.id, now)
      return approval ? { approval, untrusted: null } : { approval: null, untrusted: null }
    },
    giveBack: (id, now = Date.now()) => guard(() => Number(unuse.run(id, now).changes) === 1),
    get: (id, now = Date.now()) => read(id, now),
    async list(filter = {}, now = Date.now()) {
      return await guard(() => {
        expire.run(now)
        const rows = (filter.status ? withStatus.all(filter.status) : all.all()) as unknown as Row[]
        return rows.map(fromRow)
      })
    },
    async decide(id, decision, by, now = Date.now()): Promise<DecideResult> {
      const changed = await guard(() => Number(decide.run(decision === 'approve' ? 'approved' : 'denied', by.name, JSON.stringify(by.roles), now, id, now).changes))
      const approval = await read(id, now)
      if (changed === 1 && approval) return { ok: true, approval }
      return { ok: false, reason: approval ? 'final' : 'not_found', approval }
    },
    close: () => db.close(),
  }
}

/** The values theCall binds, in its order. */
function callOf(call: Omit<NewApproval, 'approvers' | 'ttlMs'>, status: ApprovalStatus, now: number) {
  return [call.tool, call.issuer, call.subject, call.actor, call.argsSha256, status, now] as const
}

/** Why an approved approval passed over by take does not count, for the held call's answer and record. */
function untrustedSaid(row: Row): string {
  const roles = JSON.parse(row.decided_roles ?? '[]') as string[]
  const which = roles.length === 1 ? `${roles[0]} is not` : `none of ${roles.join(', ')} is`
  return `Approval ${row.id}, approved by ${row.decided_by ?? 'an approver'} as ${roles.join(', ')}, does not count: ${which} among this tool's approvers now.`
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
