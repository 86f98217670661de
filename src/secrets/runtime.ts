// Secrets while the gateway runs: the open store, the values `${secret:NAME}` references resolve
// to, and a refresh every `secrets.refresh_interval` that picks up a new version (a rotation by
// `bouncer secrets`, by a schedule, or a changed file) and applies it to the running config without
// a restart. Requests already under way keep the headers they were built with.
import type { Config, LoadedConfig, SecretReference } from '../config/index.ts'
import { MIN_REDACTED_LENGTH, redactValues, type BackgroundTasks, type Logger } from '../telemetry/index.ts'
import { SecretsError } from './crypto.ts'
import { loadSecrets, shortValueWarning, substitute, valueProblem } from './open.ts'
import type { SecretStore } from './store.ts'
import { rotationScheduler, type RotationScheduler, type RotationState } from './rotation.ts'

export interface SecretsRuntime {
  readonly store: SecretStore | null
  readonly values: ReadonlyMap<string, string>
  /** A template with the current values (`Bearer ${secret:x}`). */
  resolve(template: string): string
  /**
   * Re-reads the referenced secrets whose marker changed; answers whether a value changed. One
   * that cannot be read is a secrets_refresh failure, once per change, and keeps its last value.
   */
  reread(): boolean
  /** Runs the scheduled rotations that are due; answers whether a referenced value changed. */
  rotateDue(): Promise<boolean>
  /** The scheduled rotations running and failing, for the next config's runtime (null: no schedule runs here). */
  readonly rotations: RotationState | null
  /** Closes the store, once a rotation under way has written its value (a reload closes it); settles then. */
  close(): Promise<void>
}

export class SecretsUnavailable extends Error {
  readonly lines: string[]
  constructor(lines: string[]) {
    super(lines.join('\n'))
    this.lines = lines
  }
}

export interface SecretsRuntimeOptions {
  logger: Logger
  background: BackgroundTasks
  env?: NodeJS.ProcessEnv
  format: (d: LoadedConfig['diagnostics'][number]) => string
  /** The running config's rotations, which a reload's runtime goes on with. */
  rotations?: RotationState | null
}

/** Opens the store of a loaded config and reads its references; SecretsUnavailable lists why not. */
export function openSecretsRuntime(loaded: LoadedConfig & { config: Config }, options: SecretsRuntimeOptions): SecretsRuntime {
  const { logger, background } = options
  const { store, values, diagnostics } = loadSecrets(loaded, options.env)
  const errors = diagnostics.filter((d) => d.severity === 'error')
  if (errors.length > 0) {
    store?.close()
    throw new SecretsUnavailable(errors.map(options.format))
  }
  for (const warning of diagnostics) logger.warn(options.format(warning))
  const refs: readonly SecretReference[] = loaded.secretRefs
  const markers = new Map(refs.map((ref) => [ref.name, store?.marker(ref.name)]))
  const scheduler: RotationScheduler | null = store?.writable && loaded.config.secrets ? rotationScheduler(store, loaded.config.secrets, logger, background, Date.now, options.rotations ?? undefined) : null

  /** A secret's new value, or undefined when its marker did not move (the marker is taken first: a change that cannot be read is reported once). */
  function changedValue(store: SecretStore, name: string): string | undefined {
    const marker = store.marker(name)
    if (marker === markers.get(name)) return undefined
    markers.set(name, marker)
    const value = store.get(name)
    if (value === undefined) throw new SecretsError(`secret "${name}" is gone from the ${store.kind} store: ${store.notFound(name)}`)
    // As at start (open.ts): a value one of its places refuses (empty, too short, a line break in a
    // header) is a failure, and every place keeps the last good value.
    for (const ref of refs) {
      const problem = ref.name === name ? valueProblem(ref, value, store.kind) : undefined
      if (problem !== undefined) throw new SecretsError(problem)
    }
    return value
  }

  function reread(): boolean {
    if (!store) return false
    let changed = false
    for (const name of new Set(refs.map((ref) => ref.name))) {
      try {
        const value = changedValue(store, name)
        if (value === undefined) continue
        redactValues([value])
        values.set(name, value)
        changed = true
        // As at start (open.ts): used, and said at each of its places, as a value redactValues leaves in the logs.
        if (value.length < MIN_REDACTED_LENGTH) {
          for (const ref of refs) if (ref.name === name) logger.warn(options.format(loaded.locate({ severity: 'warning', path: ref.path, message: shortValueWarning(name, value.length) })))
        }
      } catch (err) {
        background.failed('secrets_refresh', err, { message: 'a referenced secret could not be re-read: its last value stays in use', fields: { secret_name: name } })
      }
    }
    if (changed) logger.info({ secrets: [...markers.keys()] }, 'secrets refreshed: new values in use')
    return changed
  }

  return {
    store,
    values,
    resolve: (template) => substitute(template, values),
    reread,
    async rotateDue() {
      return scheduler !== null && (await scheduler.due()).length > 0 && reread()
    },
    rotations: scheduler?.state ?? null,
    close() {
      // A hook that has given the upstream a new value is followed by the write of it: closed under
      // it by a reload, the store refused the write, and the value the upstream held was lost.
      if (scheduler === null) {
        store?.close()
        return Promise.resolve()
      }
      return scheduler.idle().then(() => store?.close())
    },
  }
}
