export { ConfigError } from './prepare.ts'
export type { ReloadResult } from './reload.ts'
export { startGateway, type GatewayInstance, type StartOptions } from './start.ts'
export { startServing, type Serving } from './serving.ts'
