// Starts the quick start on loopback: an OpenID provider with the story's service accounts and person, the
// data API, and the gateway with examples/demo/bouncer.yaml. The first run makes a master key and
// the secrets the gateway holds (the data API's credential, the admin token) in the data directory.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import { generateSecret, masterKeyFrom, openEmbeddedStore } from '../secrets/index.ts'
import { startGateway, type GatewayInstance } from '../instance/index.ts'
import { createLogger, logLevelFromEnv } from '../telemetry/index.ts'
import { startDataApi, type DataApi } from './data-api.ts'
import { openIdProvider, type Person, type ServiceAccount } from './identity-provider.ts'
import { providerHandler } from './sign-in-pages.ts'
import { writeShopDatabase } from './shop-db.ts'
import { nodeHttp } from '../http/index.ts'

const { createServer } = nodeHttp // not imported: http/node-http.ts says why

export const DEMO_CONFIG = fileURLToPath(new URL('../../examples/demo/bouncer.yaml', import.meta.url))
/** Where the demo config keeps its files without DEMO_DATA_DIR: its `../../data`, the checkout's data/ (`npm start`'s ./data). */
export const DEMO_DEFAULT_DATA_DIR = fileURLToPath(new URL('../../data', import.meta.url))
export const DEMO_AUDIENCE = 'api://bouncer-demo'
const UPSTREAM = 'data-api'

/** The story's service accounts. Their secrets are the provider's, not the gateway's: demo values. */
export const DEMO_CLIENTS = {
  reports: { clientId: 'looker-reports', secret: 'looker-reports-demo-secret' },
  agent: { clientId: 'analytics-agent', secret: 'analytics-agent-demo-secret' },
  finance: { clientId: 'finance-analyst', secret: 'finance-analyst-demo-secret' },
} satisfies Record<string, ServiceAccount>

/** The demo SSO's test account: a person who signs in through the browser (sign_in). */
export const DEMO_PERSON: Person = { username: 'alice', password: 'alice-demo-password', name: 'Alice Analyst', email: 'alice@example.com', groups: ['analysts'] }
/** Who the demo provider knows, as the start-up line names them: every service account, and the person. */
export function providerAccounts(): string {
  const clients = Object.values(DEMO_CLIENTS).map((c) => c.clientId)
  return `service accounts ${clients.slice(0, -1).join(', ')} and ${clients.at(-1) as string}; person ${DEMO_PERSON.username}`
}

/** The gateway's sign_in client at the demo provider (its secret is the gateway's secret sso-client-secret). */
export const DEMO_WEB_CLIENT_ID = 'bouncer-demo'

export interface DemoOptions {
  port: number
  adminPort: number
  idpPort: number
  apiPort: number
  dataDir: string
}

export interface RunningDemo {
  gateway: GatewayInstance
  issuer: string
  apiUrl: string
  dataDir: string
  /** True when this run made the master key (and the secrets). */
  firstRun: boolean
  masterKeyFile: string
  /** The provider's private signing key (the tour signs an expired token with it). */
  providerKey: JWK
  /** The admin API's token (the tour decides an approval there). */
  adminToken: string
  /** The MCP endpoint's resource (the audience of agents' MCP tokens). */
  mcpResource: string
  stop(): Promise<void>
}

/** The master key file and the two secrets, made on the first run and reused afterwards. */
function prepareSecrets(dataDir: string): { firstRun: boolean; masterKeyFile: string; credential: string; ssoClientSecret: string; adminToken: string } {
  mkdirSync(dataDir, { recursive: true })
  const masterKeyFile = join(dataDir, 'master.key')
  const firstRun = !existsSync(masterKeyFile)
  if (firstRun) writeFileSync(masterKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 })
  const store = openEmbeddedStore(join(dataDir, 'secrets.db'), masterKeyFrom(`file:${masterKeyFile}`))
  try {
    for (const name of ['data-api-token', 'admin-token', 'sso-client-secret', 'dataset-key']) if (store.get(name) === undefined) store.put(name, generateSecret(32))
    return { firstRun, masterKeyFile, credential: store.get('data-api-token') as string, ssoClientSecret: store.get('sso-client-secret') as string, adminToken: store.get('admin-token') as string }
  } finally {
    store.close()
  }
}

async function listen(server: Server, port: number): Promise<number> {
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const dataDir = resolve(options.dataDir)
  const { firstRun, masterKeyFile, credential, ssoClientSecret, adminToken } = prepareSecrets(dataDir)
  writeShopDatabase(join(dataDir, 'shop.db'))

  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const providerKey: JWK = { ...(await exportJWK(privateKey)), kid: 'demo-es256', alg: 'ES256', use: 'sig' }
  const idpServer = createServer()
  const idpPort = await listen(idpServer, options.idpPort)
  const issuer = `http://127.0.0.1:${idpPort}`
  // The gateway's browser client is registered with its callback URL, known once the gateway
  // listens (--port 0): until then the provider serves the service accounts alone.
  const providerFor = (gateway: { url: string; adminUrl: string } | null) => openIdProvider(issuer, {
    keys: [providerKey],
    signWith: 'ES256',
    clients: Object.values(DEMO_CLIENTS),
    audience: DEMO_AUDIENCE,
    scope: 'data:read',
    tokenTtlSeconds: 600,
    people: [DEMO_PERSON],
    webClients: gateway === null ? [] : [{
      clientId: DEMO_WEB_CLIENT_ID,
      secret: ssoClientSecret,
      // The gateway's sign-in, and the console's on the admin listener (admin.read_roles).
      redirectUris: [`${gateway.url}/.bouncer/callback`, `${gateway.adminUrl}/.bouncer/callback`],
      postLogoutRedirectUris: [`${gateway.url}/healthz`],
    }],
  })
  let handle = providerHandler(providerFor(null), [DEMO_PERSON])
  idpServer.on('request', (req, res) => handle(req, res))

  const mcpResource = `http://127.0.0.1:${options.port === 0 ? 8080 : options.port}/mcp`
  let api: DataApi | undefined
  try {
    api = await startDataApi({ port: options.apiPort, credential })
    const gateway = await startGateway({
      configFile: DEMO_CONFIG,
      port: options.port,
      adminPort: options.adminPort,
      // The tour's refusals are the point of the demo: the screen shows them, the log need not.
      logger: createLogger({ level: process.env.BOUNCER_LOG_LEVEL ? logLevelFromEnv() : 'warn' }),
      env: { ...process.env, DEMO_ISSUER: issuer, DEMO_API_URL: api.url, DEMO_DATA_DIR: dataDir, DEMO_MCP_RESOURCE: mcpResource },
    })
    api.trustGateway(gateway.url, UPSTREAM)
    handle = providerHandler(providerFor(gateway), [DEMO_PERSON])
    const started = api
    return {
      gateway,
      issuer,
      apiUrl: api.url,
      dataDir,
      firstRun,
      masterKeyFile,
      providerKey,
      adminToken,
      mcpResource,
      async stop() {
        idpServer.closeAllConnections()
        idpServer.close()
        await Promise.allSettled([gateway.shutdown(), started.close()])
      },
    }
  } catch (err) {
    idpServer.close()
    await api?.close()
    throw err
  }
}
