// Secrets while the gateway runs: the open store, the values `${secret:NAME}` references resolve
// to, and a refresh every `secrets.refresh_interval` that picks up a new version (a rotation by
// `bouncer secrets`, by a schedule, or a changed file) and applies it to the running config without
// a restart. Requests already under way keep the headers they were built with.
import type { Config, LoadedConfig, SecretReference } from '../config/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import { redactValues } from '../telemetry/logger.ts'
import { loadSecrets, substitute, type SecretStore } from './index.ts'
import { rotationScheduler, type RotationScheduler } from './rotation.ts'

export interface SecretsRuntime {
  readonly store: SecretStore | null
  readonly values: ReadonlyMap<string, string>
  /** A template with the current values (`Bearer ${secret:x}`). */
  resolve(template: string): string
  /** Re-reads changed secrets and runs due rotations; answers whether a referenced value changed. */
  refresh(): Promise<boolean>
  close(): void
}

export class SecretsUnavailable extends Error {
  readonly lines: string[]
  constructor(lines: string[]) {
    super(lines.join('\n'))
    this.lines = lines
  }
}

/** Opens the store of a loaded config and reads its references; SecretsUnavailable lists why not. */
export function openSecretsRuntime(loaded: LoadedConfig & { config: Config }, logger: Logger, env: NodeJS.ProcessEnv = process.env, format: (d: LoadedConfig['diagnostics'][number]) => string): SecretsRuntime {
  const { store, values, diagnostics } = loadSecrets(loaded, env)
  if (diagnostics.length > 0) {
    store?.close()
    throw new SecretsUnavailable(diagnostics.map(format))
  }
  const refs: readonly SecretReference[] = loaded.secretRefs
  const markers = new Map(refs.map((ref) => [ref.name, store?.marker(ref.name)]))
  const scheduler: RotationScheduler | null = store?.writable && loaded.config.secrets ? rotationScheduler(store, loaded.config.secrets.rotation, logger) : null

  function reread(): boolean {
    if (!store) return false
    let changed = false
    for (const name of new Set(refs.map((ref) => ref.name))) {
      const marker = store.marker(name)
      if (marker === markers.get(name)) continue
      markers.set(name, marker)
      const value = store.get(name)
      if (value === undefined) {
        logger.error({ secret_name: name }, 'a referenced secret disappeared from the store: its last value stays in use')
        continue
      }
      redactValues([value])
      values.set(name, value)
      changed = true
    }
    if (changed) logger.info({ secrets: [...markers.keys()] }, 'secrets refreshed: new values in use')
    return changed
  }

  return {
    store,
    values,
    resolve: (template) => substitute(template, values),
    async refresh() {
      try {
        let changed = reread()
        if (scheduler && (await scheduler.due()).length > 0) changed = reread() || changed
        return changed
      } catch (err) {
        logger.error({ err }, 'secrets refresh failed: the current values stay in use')
        return false
      }
    },
    close() {
      store?.close()
    },
  }
}
