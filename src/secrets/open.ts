// Which store a config names, `${secret:NAME}` references checked and substituted, and the values
// handed to the logger so that no log line can carry one.
import type { Diagnostic, LoadedConfig, SecretReference, SecretsConfig } from '../config/index.ts'
import { MIN_REDACTED_LENGTH, redactValues } from '../telemetry/index.ts'
import { masterKeyFrom, SecretsError, SecretStoreMissing } from './crypto.ts'
import { openEmbeddedStore } from './embedded.ts'
import { openEnvStore } from './providers/env.ts'
import { openFileStore } from './providers/file.ts'
import { GATEWAY_KEYS, invalidSecretName, SECRET_NAME, type SecretStore } from './store.ts'
import { nodeHttp } from '../http/index.ts'

const { validateHeaderValue } = nodeHttp // not imported: http/node-http.ts says why

/** `existing`: an embedded store that is not there is a SecretsError, not made (for a command that only reads). */
export function openSecretStore(config: SecretsConfig, env: NodeJS.ProcessEnv = process.env, options: { existing?: boolean } = {}): SecretStore {
  const store = config.store
  switch (store.type) {
    case 'embedded':
      return openEmbeddedStore(store.path, masterKeyFrom(store.master_key, env), options)
    case 'env':
      return openEnvStore(store.prefix, env)
    case 'file':
      return openFileStore(store.dir)
  }
}

/** The header a reference stands in (`upstreams[0].headers.Authorization`), if it is one. */
function headerOf(path: SecretReference['path']): string | undefined {
  const name = path.at(-1)
  return path.at(-2) === 'headers' && typeof name === 'string' ? name : undefined
}

/**
 * Why a value may not stand where a reference puts it, or undefined; never the value itself. At
 * start and at every refresh (runtime.ts), so a refused value keeps the last good one in use.
 * Empty: a secret file truncated to be rewritten in place sent `Bearer` with no credential. A line
 * break is refused only in a header: a PEM key elsewhere is multi-line, but in a header every
 * request failed mid-exchange with nothing logged.
 */
export function valueProblem(ref: SecretReference, value: string, kind: SecretStore['kind']): string | undefined {
  if (value === '') return `secret "${ref.name}" is empty in the ${kind} store: an empty value is refused`
  // The length only: never the value.
  if (ref.minLength !== undefined && value.length < ref.minLength) return `secret "${ref.name}" is ${value.length} characters: ${ref.place} is at least ${ref.minLength}`
  const header = headerOf(ref.path)
  if (header === undefined) return undefined
  try {
    validateHeaderValue(header, value)
    return undefined
  } catch {
    // Named for what it is: a value with `€` was said to hold a control character it did not (a probe).
    const what = NOT_LATIN_1.test(value) ? 'a character outside Latin-1, which HTTP cannot carry' : 'a line break, NUL or another control character'
    return `secret "${ref.name}" cannot stand in the header ${header}: it holds a character a header value may not (${what})`
  }
}

const NOT_LATIN_1 = /[\u0100-\uffff]/

/** A value too short to take out of the logs, and to be a credential worth the name. */
export function shortValueWarning(name: string, length: number): string {
  return `secret "${name}" is ${length} character${length === 1 ? '' : 's'}: a value under ${MIN_REDACTED_LENGTH} is not taken out of the logs (it would blank ordinary words), and a credential that short can be guessed: use a longer one`
}

const REFERENCE = /\$\{secret:([^}]*)\}/g

/** `Bearer ${secret:sales-api-token}` with the current values. */
export function substitute(template: string, values: ReadonlyMap<string, string>): string {
  return template.includes('${secret:') ? template.replace(REFERENCE, (_text, name: string) => values.get(name) ?? '') : template
}

/**
 * Opens the store a config names and reads every referenced secret: the values, or diagnostics
 * (a store that cannot be opened, a secret that does not exist) at their place in the file.
 * `existing` (bouncer check, which writes nothing): an embedded store that is not there is not
 * made, and is a problem only when the config references a secret. Opened as at a start, it was
 * made: `bouncer check` left ./data/secrets.db behind, sealed with whatever key it was given
 * (found by an adversarial probe).
 */
export function loadSecrets(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env, options: { existing?: boolean } = {}): { store: SecretStore | null; values: Map<string, string>; diagnostics: Diagnostic[] } {
  const secrets = loaded.config?.secrets
  if (!secrets) return { store: null, values: new Map(), diagnostics: [] }
  const read = readReferences(loaded, secrets, env, options)
  return { ...read, diagnostics: [...scheduleProblems(loaded, secrets), ...read.diagnostics] }
}

/**
 * secrets.rotation's schedules that cannot do what they say. Check said ok to them: a name no
 * store holds failed at every retry, in the log only, and a schedule for bouncer.assertion-key put
 * random text over the key at every period, which the gateway replaced with a new key, the key
 * before it (what it signed verifies with) gone from the store (found by the secrets probe).
 */
function scheduleProblems(loaded: LoadedConfig, secrets: SecretsConfig): Diagnostic[] {
  const problems: Diagnostic[] = []
  for (const name of Object.keys(secrets.rotation)) {
    const message = !SECRET_NAME.test(name) ? invalidSecretName(name)
      : GATEWAY_KEYS.includes(name) ? `${name} is a key the gateway makes itself: a schedule would replace it with random text; it rotates by its own setting (assertion.rotate_every, token_exchange.signing.rotate_every) or bouncer secrets rotate ${name}`
        : undefined
    if (message !== undefined) problems.push(loaded.locate({ severity: 'error', path: ['secrets', 'rotation', name], message }))
  }
  return problems
}

function readReferences(loaded: LoadedConfig, secrets: SecretsConfig, env: NodeJS.ProcessEnv, options: { existing?: boolean }): { store: SecretStore | null; values: Map<string, string>; diagnostics: Diagnostic[] } {
  const values = new Map<string, string>()
  let store: SecretStore
  try {
    store = openSecretStore(secrets, env, options)
  } catch (err) {
    if (!(err instanceof SecretsError)) throw err
    // Nothing to read from it yet, and a start makes it.
    if (err instanceof SecretStoreMissing && loaded.secretRefs.length === 0) return { store: null, values, diagnostics: [] }
    return { store: null, values, diagnostics: [loaded.locate({ severity: 'error', path: ['secrets', 'store'], message: `cannot open the secrets store: ${err.message}` })] }
  }
  const diagnostics: Diagnostic[] = []
  for (const ref of loaded.secretRefs) {
    // A name no store holds: the file store, which reads none outside its folder, said `${secret:../x}`
    // had "no file" where x was there, and `${secret:}` named the folder (found by an adversarial probe).
    if (!SECRET_NAME.test(ref.name)) {
      diagnostics.push(loaded.locate({ severity: 'error', path: ref.path, message: invalidSecretName(ref.name) }))
      continue
    }
    // A private key the gateway signs with, sent to an upstream in a header, let it sign what every
    // other upstream takes as the gateway's (found by the secrets probe). Only the token exchange's
    // signing key, which is one, may name one.
    if (GATEWAY_KEYS.includes(ref.name) && ref.path.join('.') !== 'token_exchange.signing.key') {
      diagnostics.push(loaded.locate({ severity: 'error', path: ref.path, message: `${ref.name} is a key the gateway makes itself: a reference would send it where it stands, and it never leaves the gateway` }))
      continue
    }
    try {
      const value = store.get(ref.name)
      const problem = value === undefined ? `secret "${ref.name}" does not exist in the ${store.kind} store: ${store.notFound(ref.name)}` : valueProblem(ref, value, store.kind)
      if (problem !== undefined) diagnostics.push(loaded.locate({ severity: 'error', path: ref.path, message: problem }))
      else if (value !== undefined) {
        values.set(ref.name, value)
        // The length only, never the value.
        if (value.length < MIN_REDACTED_LENGTH) diagnostics.push(loaded.locate({ severity: 'warning', path: ref.path, message: shortValueWarning(ref.name, value.length) }))
      }
    } catch (err) {
      if (!(err instanceof SecretsError)) throw err
      diagnostics.push(loaded.locate({ severity: 'error', path: ref.path, message: err.message }))
    }
  }
  redactValues(values.values())
  return { store, values, diagnostics }
}
