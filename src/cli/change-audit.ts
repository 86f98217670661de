// The audit record of a credential change made from the command line (`keys create|revoke`,
// `sessions revoke`, `secrets put|rotate|delete|rekey`): the admin API's changes are made by a
// token or a signed-in person; these by whoever runs the command, so the record names the OS user
// (`subject`, `credential: os_user`) and the command (`method: CLI`, `path`), in the chain of this
// host (`instance` and chain `cli:<host>`: audit/change-log.ts), with `--reason` in `detail`.
//
// What happens when the change cannot be audited:
// - the config keeps no records (audit.sinks empty, or stdout only): the change is made, with a
//   warning on stderr, as the gateway itself records nothing then;
// - the audit log cannot be opened (PostgreSQL down, a file this user cannot write): nothing is
//   changed (exit 1), except a revocation (keys revoke, sessions revoke), which goes through with
//   a warning: a leaked credential is not left working for want of a log line;
// - the record cannot be written once the change is made: the change stays, and the command says
//   so and exits 1, so that a script notices.
//
// Where this user can read the gateway's checkpoint key (the secrets store, or the key file), each
// record's new head is signed too, so deleting the chain's newest records shows in `audit verify`;
// where not, the chain is not anchored (verify notes it), as before.
import { hostname, userInfo } from 'node:os'
import { AuditUnavailable, changeRecord, changeSignerOf, keepsRecords, openChangeLog, type ChangeLog, type ChangeSigner } from '../audit/index.ts'
import { openSecretStore, SecretsError, type SecretStore } from '../secrets/index.ts'
import { printable } from '../text/index.ts'
import type { ValidConfig } from './config.ts'
import { versionLine } from './version.ts'
import { UserError } from './user-error.ts'

/** What was changed: the command as typed, but never a secret (a key's id, not the key). */
export interface Change {
  command: string
  /** What the change did, in a sentence. */
  detail: string
  /** The API key the change is about (as a request made with it records it). */
  keyId?: string
}

export interface ChangeTrail {
  /** Records a change that was made (see the file's comment for a record that cannot be). */
  record(change: Change): Promise<void>
  close(): Promise<void>
}

/** The chain (and `instance`) of the commands run on this host. */
export const cliChainId = (): string => `cli:${hostname()}`

/** The OS user running the command: its name, else its uid (a container's user without a passwd entry). */
function osUser(): string {
  try {
    return userInfo().username
  } catch {
    return `uid:${process.getuid?.() ?? '?'}`
  }
}

export const REASON_OPTION = ['--reason <text>', 'why, kept in the audit record of the change (its detail)'] as const

/**
 * The gateway's checkpoint key, where this user can read it: the secrets store (when it opens), else
 * the key file. Looked for, never made: an embedded store is opened only if it is there (opened
 * otherwise, it was created, and `secrets rekey` found a store where there was none and sealed it);
 * and with no sink that keeps records there is no chain to sign.
 */
function changeSigner(loaded: ValidConfig): ChangeSigner | null {
  const { audit, secrets } = loaded.config
  if (!keepsRecords(audit)) return null
  let store: SecretStore | null = null
  try {
    if (secrets) store = openSecretStore(secrets, process.env, { existing: true })
    return changeSignerOf(audit, store)
  } catch (err) {
    if (!(err instanceof SecretsError)) throw err
    return changeSignerOf(audit, null)
  } finally {
    store?.close()
  }
}

/**
 * Opens the audit log for a change, before it is made. `revoking`: the change takes a credential
 * away, and is made even when the log cannot take its record.
 */
export async function openChangeTrail(loaded: ValidConfig, reason: string | undefined, options: { revoking: boolean }): Promise<ChangeTrail> {
  const started = performance.now()
  const chainId = cliChainId()
  let log: ChangeLog | null
  try {
    log = await openChangeLog(loaded.config.audit, chainId, changeSigner(loaded))
  } catch (err) {
    if (!(err instanceof AuditUnavailable)) throw err
    if (!options.revoking) throw new UserError(`nothing was changed: ${err.message}, so this change would leave no audit record. Make the audit log writable for this user, then run the command again`)
    console.error(printable(`warning: revoking anyway, WITHOUT AN AUDIT RECORD: ${err.message}`))
    return { record: async () => {}, close: async () => {} }
  }
  if (log === null) {
    console.error(printable(`warning: this change is NOT AUDITED: ${loaded.file} has no audit sink that keeps records (audit.sinks: sqlite or postgres)`))
    return { record: async () => {}, close: async () => {} }
  }
  const opened = log
  return {
    async record(change) {
      const user = osUser()
      const sudo = process.env.SUDO_USER && process.env.SUDO_USER !== user ? ` Run through sudo by ${process.env.SUDO_USER}.` : ''
      const input = changeRecord({
        method: 'CLI', path: change.command, detail: `${change.detail}${reason ? ` Reason: ${reason}` : ''}${sudo}`,
        actor: { issuer: 'os', subject: user, credential: 'os_user', roles: [] }, keyId: change.keyId,
        sourceIp: '-', userAgent: versionLine(), started,
      }, chainId)
      try {
        await opened.append(input)
        if (opened.unanchored) console.error(printable(`warning: the change's audit record is written, but its checkpoint is not: ${opened.unanchored}`))
      } catch (err) {
        if (!(err instanceof AuditUnavailable)) throw err
        throw new UserError(`the change WAS MADE, but its audit record was not written: ${err.message}`)
      }
    },
    close: () => opened.close(),
  }
}

/**
 * Makes a change with its audit record: the log is opened first (openChangeTrail), then `change`
 * runs, then the record of what `describe` says it did is written (none when it changed nothing).
 */
export async function audited<T>(loaded: ValidConfig, reason: string | undefined, options: { revoking: boolean }, change: () => Promise<T>, describe: (result: T) => Change | null): Promise<T> {
  const trail = await openChangeTrail(loaded, reason, options)
  try {
    const result = await change()
    const made = describe(result)
    if (made) await trail.record(made)
    return result
  } finally {
    await trail.close()
  }
}
