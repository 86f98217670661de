export { compileDataset, datasetBackend, datasetSchemaBackend, type DatasetRoute } from './backend.ts'
export { createDatasourceRegistry, type DatasourceRegistry } from './registry.ts'
export type { Datasource } from './source.ts'
