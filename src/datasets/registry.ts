// One datasource per configuration, kept across reloads while its settings stay the same (its pool
// stays warm); a reload that changes them opens a new one and closes the old once it is retired.
import { createHmac, randomBytes } from 'node:crypto'
import { createSharedResources, type SharedResources } from '../collections/index.ts'
import type { DatasourceConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { postgresDatasource } from './postgres.ts'
import type { Datasource } from './source.ts'
import { sqliteDatasource } from './sqlite.ts'

export type DatasourceRegistry = SharedResources<DatasourceConfig, Datasource>

/** Offline (bouncer explain): nothing connects. */
/**
 * `datasetKey`: the process's key (instance/own-keys.ts), from which a datasource without a `key`
 * of its own gets one (per name): the same in every worker of server.workers, so a cursor one
 * worker sealed opens on another and a `hash` mask gives one value. Without it, a random key each.
 */
export function createDatasourceRegistry(logger: Logger, options: { offline?: boolean; datasetKey?: string }): DatasourceRegistry {
  const offline = options.offline === true
  const keyFor = (name: string) => (options.datasetKey === undefined ? randomBytes(32) : createHmac('sha256', options.datasetKey).update(`datasource:${name}`).digest())
  return createSharedResources({
    fingerprint: (config) => JSON.stringify(config),
    create: (config) => (config.type === 'postgres' ? postgresDatasource(config, logger, { offline, key: keyFor(config.name) }) : sqliteDatasource(config, logger, { offline, key: keyFor(config.name) })),
    close: (source) => source.close(),
  })
}
