// `bouncer keys create|list|revoke`: the API keys of the config's `api_keys` store. `create` prints
// the key once, on stdout alone (KEY=$(bouncer keys create …) works); it is never stored, only its
// hash, so it cannot be shown again. Running gateways see a revocation within api_keys.cache.
import type { Command } from 'commander'
import { parseDuration } from '../config/index.ts'
import { apiKeyId, ApiKeyStoreError, keyDocument, newApiKey, openApiKeyStore, parseApiKey, PRINCIPAL_NAME, type ApiKeyDocument, type ApiKeyStore } from '../identity/index.ts'
import { printable } from '../text/index.ts'
import { audited, REASON_OPTION } from './change-audit.ts'
import { configOption, loadCommandConfig, type ValidConfig } from './config.ts'
import { missingStore } from './store-file.ts'
import { UserError } from './user-error.ts'

const MAX_DESCRIPTION = 256

/** The config, when it has an API key store. */
async function keysConfig(configPath: string | undefined): Promise<ValidConfig> {
  const loaded = await loadCommandConfig(configPath)
  if (!loaded.config.api_keys) throw new UserError(`${loaded.file} configures no API keys (api_keys)`)
  return loaded
}

/** api_keys, which keysConfig made sure is there. */
function apiKeysOf(loaded: ValidConfig): NonNullable<ValidConfig['config']['api_keys']> {
  return loaded.config.api_keys as NonNullable<ValidConfig['config']['api_keys']>
}

async function withStore<T>(loaded: ValidConfig, work: (store: ApiKeyStore, cacheMs: number) => Promise<T>): Promise<T> {
  const settings = apiKeysOf(loaded)
  let store: ApiKeyStore
  try {
    store = openApiKeyStore(settings.store)
  } catch (err) {
    if (err instanceof ApiKeyStoreError) throw new UserError(err.message)
    throw err
  }
  try {
    return await work(store, settings.cache)
  } catch (err) {
    if (err instanceof ApiKeyStoreError) throw new UserError(err.message)
    throw err
  } finally {
    await store.close()
  }
}


export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys (a key is printed once, at create; only its hash is stored)')

  configOption(keys.command('create').description('create an API key for a principal and print it, once'))
    .requiredOption('--principal <name>', 'who the key stands for: trust rules match it as the subject, with issuer api-keys')
    .option('--expires <duration>', 'refuse the key after this long (e.g. 90d); default: never')
    .option('--description <text>', 'what the key is for (shown by keys list)')
    .option(...REASON_OPTION)
    .action(async (opts: { config?: string; principal: string; expires?: string; description?: string; reason?: string }) => {
      if (!PRINCIPAL_NAME.test(opts.principal)) {
        throw new UserError(`"${opts.principal}" is not a valid principal name (letters, digits and . _ : @ -, at most 128)`, 2)
      }
      let expiresIn: number | null = null
      if (opts.expires !== undefined) {
        const parsed = parseDuration(opts.expires)
        if (!parsed.ok || parsed.value <= 0) throw new UserError(`--expires takes a duration such as 30d or 12h${parsed.ok ? ' (more than 0)' : `: ${parsed.message}`}`, 2)
        expiresIn = parsed.value
      }
      const description = opts.description ?? null
      if (description !== null && description.length > MAX_DESCRIPTION) throw new UserError(`--description is at most ${MAX_DESCRIPTION} characters`, 2)
      const created = newApiKey()
      const now = Date.now()
      const until = expiresIn === null ? 'does not expire' : `expires ${new Date(now + expiresIn).toISOString()}`
      const loaded = await keysConfig(opts.config)
      await audited(loaded, opts.reason, { revoking: false }, async () => {
        await withStore(loaded, (store) => store.insert({
          id: created.id, principal: opts.principal, description, hash: created.hash,
          createdAt: now, expiresAt: expiresIn === null ? null : now + expiresIn, revokedAt: null, lastUsedAt: null,
        }))
        process.stdout.write(`${created.key}\n`)
        console.error(printable(`created API key ${created.id} for principal ${opts.principal} (${until}). It is shown this once: store it now.`))
      }, () => ({
        command: `bouncer keys create --principal ${opts.principal}${opts.expires === undefined ? '' : ` --expires ${opts.expires}`}`,
        detail: `Created API key ${created.id} for principal ${opts.principal} (${until}).`,
        keyId: created.id,
      }))
    })

  configOption(keys.command('list').description('the API keys, newest first (never a key or its hash)'))
    .option('--json', 'one JSON object per key (NDJSON)')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const now = Date.now()
      const loaded = await keysConfig(opts.config)
      const documents = missingStore(apiKeysOf(loaded).store) !== null ? [] : await withStore(loaded, async (store) => (await store.list()).map((record) => keyDocument(record, now)))
      if (opts.json) {
        for (const document of documents) process.stdout.write(`${JSON.stringify(document)}\n`)
        return
      }
      if (documents.length === 0) return void console.log('no API keys')
      console.log(table(documents))
    })

  configOption(keys.command('revoke').argument('<id>', 'the key\'s id as keys list shows it, or bk_<id> (never the whole key: a command line is seen in ps and kept in shell history)').description('revoke an API key: every gateway refuses it within api_keys.cache'))
    .option(...REASON_OPTION)
    .action(async (text: string, opts: { config?: string; reason?: string }) => {
      const id = apiKeyId(text.trim())
      if (id === null) throw new UserError('give the key\'s id as keys list shows it (16 hex digits), or bk_<id>', 2)
      // The whole key is still taken: whoever pastes a leaked key wants it dead now, and once revoked
      // its secret opens nothing. Refusing it would not take it back out of ps or the history.
      const whole = parseApiKey(text.trim()) !== null
      if (whole) console.error(`warning: the whole key was given, so its secret is in this shell's history and was visible to ps; next time give its id, bk_${id}`)
      const now = Date.now()
      const loaded = await keysConfig(opts.config)
      const missing = missingStore(apiKeysOf(loaded).store)
      if (missing !== null) throw new UserError(`no API key ${id}: there is no API key store at ${missing} yet`)
      const { record, cacheMs } = await audited(loaded, opts.reason, { revoking: true },
        () => withStore(loaded, async (store, cacheMs) => ({ record: await store.revoke(id, now), cacheMs })),
        // A key unknown, or revoked before: nothing changed, nothing to record.
        ({ record }) => (record?.revokedAt === now ? { command: `bouncer keys revoke ${id}`, detail: `Revoked API key ${id} of principal ${record.principal}.`, keyId: id } : null))
      if (!record) throw new UserError(`no API key ${id}${whole ? ' in this store: if the key is real it still works elsewhere, and its secret is now in your shell history' : ''}`)
      if (record.revokedAt !== now) return void console.log(printable(`API key ${id} (principal ${record.principal}) was already revoked at ${new Date(record.revokedAt as number).toISOString()}`))
      console.log(printable(`revoked API key ${id} (principal ${record.principal}): every gateway refuses it within ${cacheMs} ms`))
    })
}

function table(documents: readonly ApiKeyDocument[]): string {
  const rows = [['ID', 'PRINCIPAL', 'STATUS', 'CREATED (UTC)', 'EXPIRES', 'LAST USED', 'DESCRIPTION']]
  const time = (iso: string | null) => (iso === null ? '-' : `${iso.slice(0, 10)} ${iso.slice(11, 19)}`)
  for (const d of documents) rows.push([d.id, d.principal, d.status, time(d.created_at), time(d.expires_at), time(d.last_used_at), d.description ?? ''])
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  // A description is whatever someone typed: made printable so it cannot rewrite the rows around it.
  return rows.map((row) => printable(row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd())).join('\n')
}
