// One datasource per configuration, kept across reloads while its settings stay the same (its pool
// stays warm); a reload that changes them opens a new one and closes the old once it is retired.
import { createSharedResources, type SharedResources } from '../collections/index.ts'
import type { DatasourceConfig } from '../config/index.ts'
import type { Logger } from '../telemetry/index.ts'
import { postgresDatasource } from './postgres.ts'
import type { Datasource } from './source.ts'
import { sqliteDatasource } from './sqlite.ts'

export type DatasourceRegistry = SharedResources<DatasourceConfig, Datasource>

/** Offline (bouncer explain): nothing connects. */
export function createDatasourceRegistry(logger: Logger, options: { offline?: boolean }): DatasourceRegistry {
  const offline = options.offline === true
  return createSharedResources({
    fingerprint: (config) => JSON.stringify(config),
    create: (config) => (config.type === 'postgres' ? postgresDatasource(config, logger, { offline }) : sqliteDatasource(config, logger, { offline })),
    close: (source) => source.close(),
  })
}
