// `bouncer sessions list|revoke`: the browser sessions of the config's sign_in store. A revocation
// is written to the store the gateways read at every request, so it is effective at once on every
// instance that shares it (sqlite on one host, redis across hosts). Sessions in memory live inside
// one gateway process: they are revoked through its admin API instead.
import type { Command } from 'commander'
import { openSessionStore, SESSION_ID, sessionDocument, SessionStoreError, type SessionDocument, type SessionStore } from '../identity/index.ts'
import { printable } from '../text/index.ts'
import { audited, REASON_OPTION } from './change-audit.ts'
import { configOption, loadCommandConfig, type ValidConfig } from './config.ts'
import { missingStore } from './store-file.ts'
import { UserError } from './user-error.ts'

/** The config, when its sessions are kept in a store this command can reach. */
async function sessionsConfig(configPath: string | undefined): Promise<ValidConfig> {
  const loaded = await loadCommandConfig(configPath)
  const settings = loaded.config.sign_in
  if (!settings) throw new UserError(`${loaded.file} configures no browser sign-in (sign_in)`)
  if (settings.session.store.type === 'memory') {
    throw new UserError('sessions in memory live inside the gateway process: list and revoke them with its admin API (GET /api/sessions, DELETE /api/sessions/ID), or use store sqlite or redis')
  }
  return loaded
}

/** sign_in, which sessionsConfig made sure is there. */
function signInOf(loaded: ValidConfig): NonNullable<ValidConfig['config']['sign_in']> {
  return loaded.config.sign_in as NonNullable<ValidConfig['config']['sign_in']>
}

async function withStore<T>(loaded: ValidConfig, work: (store: SessionStore) => Promise<T>): Promise<T> {
  const settings = signInOf(loaded)
  let store: SessionStore
  try {
    store = openSessionStore({ store: settings.session.store, idle: settings.session.idle }, null)
  } catch (err) {
    if (err instanceof SessionStoreError) throw new UserError(err.message)
    throw err
  }
  try {
    return await work(store)
  } catch (err) {
    if (err instanceof SessionStoreError) throw new UserError(err.message)
    throw err
  } finally {
    await store.close()
  }
}


export function registerSessions(program: Command): void {
  const sessions = program.command('sessions').description('browser sessions of sign_in: list them, end them (at once, on every instance)')

  configOption(sessions.command('list').description('the live sessions, newest first (never a cookie or token)'))
    .option('--json', 'one JSON object per session (NDJSON)')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const loaded = await sessionsConfig(opts.config)
      const documents = missingStore(signInOf(loaded).session.store) !== null ? [] : await withStore(loaded, async (store) => (await store.list(Date.now())).map(sessionDocument))
      if (opts.json) {
        for (const document of documents) process.stdout.write(`${JSON.stringify(document)}\n`)
        return
      }
      if (documents.length === 0) return void console.log('no sessions')
      console.log(table(documents))
    })

  configOption(sessions.command('revoke').argument('[id]', 'the session\'s id, as sessions list shows it').description('end sessions: their cookies are refused at the next request'))
    .option('--subject <sub>', 'end every session of this person (their subject) instead')
    .option(...REASON_OPTION)
    .action(async (id: string | undefined, opts: { config?: string; subject?: string; reason?: string }) => {
      if ((id === undefined) === (opts.subject === undefined)) throw new UserError('give a session id, or --subject SUB (not both)', 2)
      if (id !== undefined && !SESSION_ID.test(id.trim().toLowerCase())) throw new UserError('a session id is 32 hex digits, as sessions list shows it', 2)
      const loaded = await sessionsConfig(opts.config)
      const missing = missingStore(signInOf(loaded).session.store)
      if (missing !== null && id !== undefined) throw new UserError(`no session ${id}: there is no session store at ${missing} yet`)
      if (missing !== null) return void console.log(printable(`ended 0 sessions of ${opts.subject}`))
      const ended = await audited(loaded, opts.reason, { revoking: true }, () => withStore(loaded, async (store) => {
        if (id !== undefined) return (await store.delete(id.trim().toLowerCase())) ? [id.trim().toLowerCase()] : []
        const mine = (await store.list(Date.now())).filter((record) => record.subject === opts.subject)
        for (const record of mine) await store.delete(record.id)
        return mine.map((record) => record.id)
      }), (ids) => (ids.length === 0 ? null : {
        command: id !== undefined ? `bouncer sessions revoke ${ids[0]}` : `bouncer sessions revoke --subject ${opts.subject}`,
        detail: id !== undefined ? `Ended session ${ids[0]}.` : `Ended ${ids.length} session${ids.length === 1 ? '' : 's'} of ${opts.subject}: ${ids.join(', ')}.`,
      }))
      if (id !== undefined && ended.length === 0) throw new UserError(`no session ${id}`)
      console.log(printable(id !== undefined ? `ended session ${ended[0]}` : `ended ${ended.length} session${ended.length === 1 ? '' : 's'} of ${opts.subject}`))
    })
}

function table(documents: readonly SessionDocument[]): string {
  const rows = [['ID', 'FOR', 'SUBJECT', 'EMAIL', 'SIGNED IN (UTC)', 'LAST SEEN', 'EXPIRES']]
  const time = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 19)}`
  for (const d of documents) rows.push([d.id, d.audience, d.subject, d.email ?? '-', time(d.created_at), time(d.last_seen_at), time(d.expires_at)])
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  // Subjects and emails come from the provider: made printable so they cannot rewrite the rows.
  return rows.map((row) => printable(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd())).join('\n')
}
