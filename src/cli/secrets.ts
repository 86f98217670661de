// `bouncer secrets put|rotate|list|versions|delete|get|rekey`: the store of the config's `secrets`
// section. No command prints a value, except `get NAME --reveal`.
import { existsSync } from 'node:fs'
import type { Command } from 'commander'
import { formatDiagnostic } from '../config/index.ts'
import { ASSERTION_KEY, dropPreviousMasterKey, EXCHANGE_KEY, generateSecret, invalidSecretName, isSigningKey, masterKeyFrom, newSigningKey, openSecretStore, ReadOnlyStore, rekeyEmbeddedStore, SECRET_NAME, SecretsError, valueProblem, type SecretStore } from '../secrets/index.ts'
import { printable } from '../text/index.ts'
import { CHECKPOINT_KEY, isCheckpointKey, newCheckpointKey } from '../audit/index.ts'
import { audited, REASON_OPTION } from './change-audit.ts'
import { configOption, loadCommandConfig, type ValidConfig } from './config.ts'
import { readStdin } from './stdin.ts'
import { UserError } from './user-error.ts'

/** The config, when it has a secrets store. */
async function secretsConfig(configPath: string | undefined): Promise<ValidConfig> {
  const loaded = await loadCommandConfig(configPath)
  if (!loaded.config.secrets) throw new UserError(`${loaded.file} configures no secrets store (secrets.store)`)
  return loaded
}

/**
 * `existing`: a command that reads (or deletes) opens an embedded store only if it is there. Made
 * by `list`, a store got a data key sealed under whatever master key the shell held, which the
 * gateway's then did not open, and a mistyped path was answered "no secrets" (found by the operator probe).
 */
async function withStore<T>(config: string | undefined | ValidConfig, work: (store: SecretStore) => T | Promise<T>, options: { existing?: boolean } = {}): Promise<T> {
  const loaded = typeof config === 'object' ? config : await secretsConfig(config)
  let store: SecretStore
  try {
    store = openSecretStore(loaded.config.secrets as NonNullable<ValidConfig['config']['secrets']>, process.env, options)
  } catch (err) {
    if (err instanceof SecretsError) throw new UserError(err.message)
    throw err
  }
  try {
    return await work(store)
  } catch (err) {
    if (err instanceof SecretsError || err instanceof ReadOnlyStore) throw new UserError(err.message)
    throw err
  } finally {
    store.close()
  }
}

function checkName(name: string): void {
  if (!SECRET_NAME.test(name)) throw new UserError(invalidSecretName(name), 2)
}

/** The assertion, token exchange and audit checkpoint signing keys are key pairs the gateway makes: a value given for one must be one. */
function checkValue(name: string, value: string): void {
  if (name === ASSERTION_KEY && !isSigningKey(value)) {
    throw new UserError(`${ASSERTION_KEY} holds the identity assertion signing key: rotate it with "bouncer secrets rotate ${ASSERTION_KEY}" (no value), or give an EC P-256 private key (PEM)`)
  }
  // The gateway would replace a value that is not a key with a new one, and the previous version (the
  // key older checkpoints verify with) would go with it.
  if (name === CHECKPOINT_KEY && !isCheckpointKey(value)) {
    throw new UserError(`${CHECKPOINT_KEY} holds the audit checkpoint signing key: rotate it with "bouncer secrets rotate ${CHECKPOINT_KEY}" (no value)`)
  }
  if (name === EXCHANGE_KEY && !isSigningKey(value)) {
    throw new UserError(`${EXCHANGE_KEY} holds the token exchange signing key: rotate it with "bouncer secrets rotate ${EXCHANGE_KEY}" (no value), or give an EC P-256 private key (PEM)`)
  }
}

/**
 * A value refused where the config uses it (a line break in a header, a datasource key under 16
 * characters), said at each place as bouncer check says it, never the value. Stored, it was
 * "version 2 is current" while the running gateway kept the one before (in its log only), check
 * failed, and the next start refused to run (found by the secrets probe).
 */
function checkPlaces(loaded: ValidConfig, name: string, value: string): void {
  const problems = loaded.secretRefs.flatMap((ref) => {
    const problem = ref.name === name ? valueProblem(ref, value, 'embedded') : undefined
    return problem === undefined ? [] : [formatDiagnostic(loaded.file, loaded.locate({ severity: 'error', path: ref.path, message: problem }))]
  })
  if (problems.length === 0) return
  for (const problem of problems) console.error(printable(problem))
  throw new UserError(`${name} is not stored: the gateway would refuse the value where the config uses it`)
}

/** Which version is current and which previous: a first one (a gateway key rotated before it was made) has none before it, not a version 0. */
function versionsSaid(current: number): string {
  return current === 1 ? 'version 1 is current' : `version ${current} is current, version ${current - 1} is previous`
}

/** The keys the gateway makes itself: rotated without a value, they get a new key pair. */
const GENERATED_KEYS: Readonly<Record<string, () => string>> = { [ASSERTION_KEY]: newSigningKey, [EXCHANGE_KEY]: newSigningKey, [CHECKPOINT_KEY]: newCheckpointKey }

export function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description('manage the secrets store (values are never printed, except by get --reveal)')

  configOption(secrets.command('put').argument('<name>').description('store a secret (the value on stdin) as a new version'))
    .option(...REASON_OPTION)
    .action(async (name: string, opts: { config?: string; reason?: string }) => {
      checkName(name)
      const value = await readStdin('printf %s "$TOKEN" | bouncer secrets put NAME')
      checkValue(name, value)
      const loaded = await secretsConfig(opts.config)
      checkPlaces(loaded, name, value)
      const version = await audited(loaded, opts.reason, { revoking: false }, () => withStore(loaded, (store) => store.put(name, value)),
        (stored) => ({ command: `bouncer secrets put ${name}`, detail: `Stored secret ${name}: version ${stored} is current.` }))
      console.log(`stored ${name}: version ${version} is current`)
    })

  configOption(secrets.command('rotate').argument('<name>').description(`add a new version (the value on stdin, or --generate) and make it current; ${ASSERTION_KEY}, ${EXCHANGE_KEY} and ${CHECKPOINT_KEY} get a new key pair`))
    .option('--generate <bytes>', 'generate a random value of this many bytes (base64url) instead of reading stdin')
    .option(...REASON_OPTION)
    .action(async (name: string, opts: { config?: string; generate?: string; reason?: string }) => {
      checkName(name)
      let value: string
      const generated = Object.hasOwn(GENERATED_KEYS, name) ? GENERATED_KEYS[name] : undefined
      if (generated && opts.generate === undefined) {
        value = generated()
      } else if (opts.generate !== undefined) {
        const bytes = Number(opts.generate)
        if (!Number.isInteger(bytes) || bytes < 16 || bytes > 1024) throw new UserError('--generate takes a number of bytes from 16 to 1024', 2)
        value = generateSecret(bytes)
      } else {
        value = await readStdin('printf %s "$TOKEN" | bouncer secrets put NAME')
      }
      checkValue(name, value)
      const loaded = await secretsConfig(opts.config)
      checkPlaces(loaded, name, value)
      const version = await audited(loaded, opts.reason, { revoking: false }, () => withStore(loaded, (store) => {
        if (!generated && store.versions(name).length === 0 && store.writable) throw new UserError(`secret ${name} does not exist: store it first with bouncer secrets put ${name}`)
        return store.put(name, value)
      }), (stored) => ({
        command: `bouncer secrets rotate ${name}${opts.generate === undefined ? '' : ` --generate ${opts.generate}`}`,
        detail: `Rotated secret ${name}: ${versionsSaid(stored)}.`,
      }))
      console.log(`rotated ${name}: ${versionsSaid(version)}`)
    })

  configOption(secrets.command('list').description('the secrets in the store, with their current version'))
    .action(async (opts: { config?: string }) => {
      await withStore(opts.config, (store) => {
        const names = store.list()
        if (names.length === 0) return void console.log(`no secrets in the ${store.kind} store`)
        for (const name of names) {
          const current = store.versions(name)[0]
          // An env or file store lists names as the environment or directory spells them.
          console.log(printable(`${name}  version ${current?.version ?? '?'}${current?.createdAt ? `  ${current.createdAt}` : ''}`))
        }
      }, { existing: true })
    })

  configOption(secrets.command('versions').argument('<name>').description("a secret's versions, newest first"))
    .action(async (name: string, opts: { config?: string }) => {
      await withStore(opts.config, (store) => {
        const versions = store.versions(name)
        if (versions.length === 0) throw new UserError(`no secret ${name}`)
        for (const v of versions) console.log(printable(`${String(v.version).padStart(4)}  ${v.createdAt}${v.label ? `  ${v.label}` : ''}`))
      }, { existing: true })
    })

  configOption(secrets.command('delete').argument('<name>').description('delete a secret and all its versions'))
    .option(...REASON_OPTION)
    .action(async (name: string, opts: { config?: string; reason?: string }) => {
      const loaded = await secretsConfig(opts.config)
      // The store first: opened first, the audit log was made (data/ and audit.db beside the config) for a store that was not there.
      const deleted = await withStore(loaded, (store) => audited(loaded, opts.reason, { revoking: false }, async () => store.delete(name),
        (done) => (done ? { command: `bouncer secrets delete ${name}`, detail: `Deleted secret ${name} and all its versions.` } : null)), { existing: true })
      if (!deleted) throw new UserError(`no secret ${name}`)
      console.log(printable(`deleted ${name}`))
    })

  configOption(secrets.command('get').argument('<name>').description("print a secret's current value (only with --reveal)"))
    .option('--reveal', 'yes, print the value')
    .action(async (name: string, opts: { config?: string; reveal?: boolean }) => {
      if (!opts.reveal) throw new UserError('bouncer secrets get prints a value only with --reveal')
      const value = await withStore(opts.config, (store) => store.get(name), { existing: true })
      if (value === undefined) throw new UserError(`no secret ${name}`)
      process.stdout.write(`${value}\n`)
    })

  configOption(secrets.command('rekey').description('seal the embedded store under a new master key (the previous key keeps opening it until --drop-previous)'))
    .option('--new-master-key <ref>', 'the new master key: env:NAME or file:PATH (32 random bytes as base64 or hex)')
    .option('--drop-previous', 'forget the previous master key, once every gateway has the new one')
    .option(...REASON_OPTION)
    .action(async (opts: { config?: string; newMasterKey?: string; dropPrevious?: boolean; reason?: string }) => {
      if ((opts.newMasterKey === undefined) === (opts.dropPrevious !== true)) throw new UserError('bouncer secrets rekey takes --new-master-key env:NAME|file:PATH, or --drop-previous', 2)
      if (!opts.dropPrevious && !/^(env|file):./.test(opts.newMasterKey as string)) throw new UserError('--new-master-key takes env:NAME or file:PATH', 2)
      const loaded = await loadCommandConfig(opts.config)
      const store = loaded.config.secrets?.store
      if (store?.type !== 'embedded') throw new UserError(`${loaded.file}: only an embedded secrets store (secrets.store.type: embedded) has a master key`)
      // Before the audit log is opened, which made data/ and audit.db beside the config for a store that was not there.
      if (!existsSync(store.path)) throw new UserError(`there is no secrets store at ${store.path} (secrets.store.path)`)
      // The record names where the new key comes from (env:NAME, file:PATH), never the key.
      const dropped = await audited(loaded, opts.reason, { revoking: false }, async () => {
        try {
          const current = masterKeyFrom(store.master_key)
          if (opts.dropPrevious) return dropPreviousMasterKey(store.path, current)
          rekeyEmbeddedStore(store.path, current, masterKeyFrom(opts.newMasterKey as string))
          return null
        } catch (err) {
          if (err instanceof SecretsError) throw new UserError(err.message)
          throw err
        }
      }, (count) => {
        if (count === null) return { command: `bouncer secrets rekey --new-master-key ${opts.newMasterKey}`, detail: `Sealed the secrets store at ${store.path} under a new master key (${opts.newMasterKey}); the previous (${store.master_key}) opens it too until --drop-previous.` }
        return count === 0 ? null : { command: 'bouncer secrets rekey --drop-previous', detail: `The secrets store at ${store.path} opens with its current master key (${store.master_key}) only.` }
      })
      if (opts.dropPrevious) {
        console.log(dropped === 0 ? `the secrets store at ${store.path} had no previous master key` : `the secrets store at ${store.path} opens with its current master key only`)
        return
      }
      console.log(`the secrets store at ${store.path} is sealed under the new master key; the previous key (${store.master_key}) opens it too until \`bouncer secrets rekey --drop-previous\`: give every gateway the new key (secrets.store.master_key), restart them, then drop the previous`)
    })
}
