// Which store a config names, `${secret:NAME}` references checked and substituted, and the values
// handed to the logger so that no log line can carry one.
import type { Diagnostic, LoadedConfig, SecretsConfig } from '../config/index.ts'
import { redactValues } from '../telemetry/index.ts'
import { masterKeyFrom, SecretsError } from './crypto.ts'
import { openEmbeddedStore } from './embedded.ts'
import { openEnvStore } from './providers/env.ts'
import { openFileStore } from './providers/file.ts'
import type { SecretStore } from './store.ts'

export function openSecretStore(config: SecretsConfig, env: NodeJS.ProcessEnv = process.env): SecretStore {
  const store = config.store
  switch (store.type) {
    case 'embedded':
      return openEmbeddedStore(store.path, masterKeyFrom(store.master_key, env))
    case 'env':
      return openEnvStore(store.prefix, env)
    case 'file':
      return openFileStore(store.dir)
  }
}

const REFERENCE = /\$\{secret:([^}]*)\}/g

/** `Bearer ${secret:sales-api-token}` with the current values. */
export function substitute(template: string, values: ReadonlyMap<string, string>): string {
  return template.includes('${secret:') ? template.replace(REFERENCE, (_text, name: string) => values.get(name) ?? '') : template
}

/**
 * Opens the store a config names and reads every referenced secret: the values, or diagnostics
 * (a store that cannot be opened, a secret that does not exist) at their place in the file.
 */
export function loadSecrets(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): { store: SecretStore | null; values: Map<string, string>; diagnostics: Diagnostic[] } {
  const values = new Map<string, string>()
  const secrets = loaded.config?.secrets
  if (!secrets) return { store: null, values, diagnostics: [] }
  let store: SecretStore
  try {
    store = openSecretStore(secrets, env)
  } catch (err) {
    if (!(err instanceof SecretsError)) throw err
    return { store: null, values, diagnostics: [loaded.locate({ severity: 'error', path: ['secrets', 'store'], message: `cannot open the secrets store: ${err.message}` })] }
  }
  const diagnostics: Diagnostic[] = []
  for (const ref of loaded.secretRefs) {
    try {
      const value = store.get(ref.name)
      if (value === undefined) diagnostics.push(loaded.locate({ severity: 'error', path: ref.path, message: `secret "${ref.name}" does not exist in the ${store.kind} store: ${store.notFound(ref.name)}` }))
      else if (ref.minLength !== undefined && value.length < ref.minLength) {
        // The length only: never the value.
        diagnostics.push(loaded.locate({ severity: 'error', path: ref.path, message: `secret "${ref.name}" is ${value.length} characters: ${ref.place} is at least ${ref.minLength}` }))
      } else values.set(ref.name, value)
    } catch (err) {
      if (!(err instanceof SecretsError)) throw err
      diagnostics.push(loaded.locate({ severity: 'error', path: ref.path, message: err.message }))
    }
  }
  redactValues(values.values())
  return { store, values, diagnostics }
}
