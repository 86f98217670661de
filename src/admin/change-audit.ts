// The audit record of a credential change made through the admin API (DELETE /api/keys/{id},
// DELETE /api/sessions/{id}): one ordinary record per change, as the command line's (cli/change-audit.ts),
// in a chain of its own per host, `admin:<host>` (audit/change-log.ts). Not the gateway's own chain:
// with server.workers the admin API may answer in the primary, which has no audit worker, and every
// process on the host appends to this one chain under each sink's lock, so the chain needs no owner.
//
// The record names the admin caller as the admin API knows it: the admin token (issuer `admin`,
// subject `admin.token`, credential `admin_token`), or the person signed in to the console (their
// issuer and subject, credential `session`, the admin role that let them), with the request's
// method and path (a key's id, never the key) and what changed in `detail`.
//
// The record is written off the gateway's thread where a sink is SQLite (audit/side-thread.ts):
// the write waits for the file's lock, and the requests being served must not wait with it.
//
// A change whose record cannot be written (the audit log down): the only changes here are
// revocations, and a leaked credential is not left working for want of a log line (as the command
// line revokes anyway). The change is made and answered, and an error is logged that says it is
// not audited.
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { appendChangeRecord, changeRecord, keepsRecords, type ChangeMade, type ChangeSigner } from '../audit/index.ts'
import type { AuditConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import type { AdminCaller } from './auth.ts'

/** A change an admin endpoint made, for its audit record. */
export interface AdminChange {
  /** The request's path as recorded: no secret in it (a key's id, not the whole key). */
  path: string
  /** What the change did, in a sentence. */
  detail: string
  /** The API key the change is about (as a request made with it records it). */
  keyId?: string
}

/** The chain (and `instance`) of the admin API's changes on this host. */
export const adminChainId = (): string => `admin:${hostname()}`

export interface ChangeContext {
  caller: AdminCaller | null
  method: string
  sourceIp: string
  userAgent: string | undefined
  /** performance.now() when the request came. */
  started: number
}

function actorOf(caller: AdminCaller | null): ChangeMade['actor'] {
  if (caller?.via === 'sign_in' && caller.identity) {
    return { issuer: caller.identity.issuerName, subject: caller.identity.sub, credential: 'session', roles: caller.role ? [caller.role] : [] }
  }
  return { issuer: 'admin', subject: caller?.via === 'read_token' ? 'admin.read_token' : 'admin.token', credential: 'admin_token', roles: [] }
}

/**
 * The records being written now. A drain waits for them: the write may be waiting on another
 * thread for the audit log's lock (audit/side-thread.ts), and the process's exit would end it
 * there, leaving a change made with no record and no error line that says so.
 */
const underWay = new Set<Promise<boolean>>()

/**
 * Writes the change's record into every sink that keeps records; true when written (or when the
 * config keeps none, as the gateway records nothing then), false after logging why it was not.
 */
export function recordAdminChange(config: AuditConfig, logger: Logger, change: AdminChange, context: ChangeContext, signer: ChangeSigner | null = null): Promise<boolean> {
  const written = writeRecord(config, logger, change, context, signer)
  underWay.add(written)
  void written.finally(() => underWay.delete(written))
  return written
}

/**
 * Once the change records under way are written, or have failed and been logged so; at most
 * `timeoutMs` (none when it is 0 or less), after which those still under way are logged as not
 * audited: the process's exit is about to end their writes.
 */
export async function adminChangesRecorded(logger: Logger, timeoutMs: number): Promise<void> {
  if (underWay.size === 0) return
  logger.info({ records: underWay.size }, 'draining: waiting for the audit records of admin changes made')
  await Promise.race([Promise.allSettled([...underWay]), sleep(Math.max(0, timeoutMs), undefined, { ref: false })])
  if (underWay.size > 0) logger.error({ records: underWay.size }, 'admin change made, but NOT AUDITED: the drain reached shutdown_timeout before its audit record was written')
}

async function writeRecord(config: AuditConfig, logger: Logger, change: AdminChange, context: ChangeContext, signer: ChangeSigner | null): Promise<boolean> {
  const chainId = adminChainId()
  const input = changeRecord({
    method: context.method, path: change.path, detail: change.detail, actor: actorOf(context.caller), keyId: change.keyId,
    sourceIp: context.sourceIp, userAgent: context.userAgent ?? null, started: context.started,
  }, chainId)
  try {
    // Signed with the gateway's checkpoint key (audit/change-log.ts): truncating this chain shows in verify.
    const unanchored = await appendChangeRecord(config, chainId, input, signer)
    if (unanchored) logger.warn({ chain: chainId }, `admin change recorded, but its checkpoint was not kept apart: ${unanchored}`)
    // The gateway holds its checkpoint key: none to sign with means its store or key file could not
    // give it back, and this chain's newest records could now be removed unseen. Said, as above.
    if (signer === null && keepsRecords(config)) logger.warn({ chain: chainId }, 'admin change recorded, but not anchored: the checkpoint key could not be read, so removing this record would not show in audit verify')
    return true
  } catch (err) {
    logger.error({ err, method: context.method, path: input.path, subject: input.subject, detail: input.detail }, 'admin change made, but NOT AUDITED: its audit record was not written')
    return false
  }
}
