// Token verification cost in process (no network): a cold verification (signature and claims) per
// algorithm, and a cache hit. Run by bench/run.ts.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { jwtIssuers, loadConfigText } from '../src/config/index.ts'
import { createApiKeyDirectory } from '../src/identity/api-keys/directory.ts'
import { newApiKey } from '../src/identity/api-keys/key.ts'
import { openSqliteKeyStore } from '../src/identity/api-keys/sqlite-store.ts'
import { apiKeyVerifier } from '../src/identity/api-keys/verifier.ts'
import { bearerVerifier, type CredentialInput, type CredentialVerifier } from '../src/identity/authenticate.ts'
import type { IssuerKeys } from '../src/identity/issuers.ts'
import { createTokenVerifier } from '../src/identity/verify.ts'
import { createBackgroundTasks } from '../src/telemetry/background.ts'
import { createLogger } from '../src/telemetry/logger.ts'

export interface VerifyRow {
  case: string
  /** CPU per token, the thread pool's share included (jose's crypto runs there). */
  cpuMicrosPerToken: number
  /** Wall time per token, one at a time: adds the hop to the thread pool and back. */
  wallMicrosPerToken: number
}

/** A verifier for one issuer with an in-memory key set (no network), and a minter for its tokens. */
export async function verifierFor(alg: 'ES256' | 'RS256' | 'EdDSA', options: { maxTokenBytes?: number } = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg }] }
  const loaded = loadConfigText(`issuers: [{ name: b, issuer: "https://idp.bench", audiences: [api], algorithms: [${alg}] }]\n`, 'bench.yaml')
  const config = loaded.config!
  const getKey = createLocalJWKSet(jwks)
  const keys: IssuerKeys = { name: 'b', issuer: 'https://idp.bench', getKey, keySetOnceTried: async () => getKey, state: 'ready', hasKeys: true, attempted: true, lastError: null, close() {} }
  const verifier = createTokenVerifier({
    issuers: jwtIssuers(config),
    keys: new Map([['b', keys]]),
    maxTokenBytes: options.maxTokenBytes ?? 8192,
    cacheEntries: 10_000,
    logger: createLogger({ level: 'silent' }),
  })
  const now = Math.floor(Date.now() / 1000)
  const mint = (i: number) =>
    new SignJWT({ iss: 'https://idp.bench', aud: 'api', sub: `svc-${i}`, exp: now + 3600, iat: now }).setProtectedHeader({ alg, kid: 'k' }).sign(privateKey)
  return { verifier, mint }
}

async function timePerToken(tokens: string[], verify: (header: string) => Promise<unknown>): Promise<Omit<VerifyRow, 'case'>> {
  // Flat strings, as the HTTP parser hands them over (a template literal would be a cons string).
  const headers = tokens.map((t) => Buffer.from(`Bearer ${t}`).toString())
  const cpu = process.cpuUsage()
  const started = performance.now()
  // One at a time: the cost of one verification, not the thread pool's parallelism.
  for (const header of headers) await verify(header)
  const used = process.cpuUsage(cpu)
  return {
    cpuMicrosPerToken: (used.user + used.system) / tokens.length,
    wallMicrosPerToken: ((performance.now() - started) * 1000) / tokens.length,
  }
}

export async function benchVerification(quick: boolean): Promise<VerifyRow[]> {
  const count = quick ? 200 : 3_000
  const rows: VerifyRow[] = []
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    const { verifier, mint } = await verifierFor(alg)
    const warm = await Promise.all(Array.from({ length: 200 }, (_, i) => mint(1_000_000 + i)))
    const verify = (header: string) => verifier.verify(header, '')
    await timePerToken(warm, verify)
    const tokens = await Promise.all(Array.from({ length: count }, (_, i) => mint(i)))
    rows.push({ case: `${alg}, cold (signature + claims)`, ...(await timePerToken(tokens, verify)) })
    if (alg === 'ES256') {
      const cached = await verifierFor('ES256')
      const token = await cached.mint(0)
      const again = Array.from({ length: count * 30 }, () => token)
      rows.push({ case: 'ES256, cached (the same token again)', ...(await timePerToken(again, (h) => cached.verifier.verify(h, ''))) })
      rows.push(...(await credentialRows(count * 30, cached.verifier, token)))
    }
  }
  return rows
}

/**
 * The cached bearer token against an API key whose record is cached (issue 17), both as the
 * authenticator calls them (a CredentialVerifier each): the API key pays SHA-256 of its secret and a
 * constant-time compare on every request, where the cached token pays a Map lookup.
 */
async function credentialRows(count: number, tokens: ReturnType<typeof createTokenVerifier>, token: string): Promise<VerifyRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-bench-keys-'))
  const store = openSqliteKeyStore(join(dir, 'keys.db'))
  const created = newApiKey()
  await store.insert({ id: created.id, principal: 'svc-bench', description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
  const logger = createLogger({ level: 'silent' })
  const directory = createApiKeyDirectory(store, { cacheMs: 500, background: createBackgroundTasks(logger, { backgroundFailed() {} }) })
  // Flat strings in Node's raw header list, as the HTTP parser hands them over.
  const input = (name: string, value: string): CredentialInput => {
    const flat = Buffer.from(value).toString()
    return { headers: name === 'Authorization' ? ({ authorization: flat } as CredentialInput['headers']) : null, rawHeaders: ['Host', '127.0.0.1:8080', name, flat, 'User-Agent', 'wrk'], query: '', socket: null as never }
  }
  const time = async (verifier: CredentialVerifier, make: () => CredentialInput): Promise<Omit<VerifyRow, 'case'>> => {
    const inputs = Array.from({ length: count }, make)
    const cpu = process.cpuUsage()
    const started = performance.now()
    for (const one of inputs) await verifier.authenticate(one)
    const used = process.cpuUsage(cpu)
    return { cpuMicrosPerToken: (used.user + used.system) / count, wallMicrosPerToken: ((performance.now() - started) * 1000) / count }
  }
  try {
    const bearer = bearerVerifier(tokens)
    const apiKey = apiKeyVerifier(directory, 'X-API-Key')
    await time(apiKey, () => input('X-API-Key', created.key)) // warm-up, and the record read once
    return [
      { case: 'ES256 cached, through the bearer credential verifier', ...(await time(bearer, () => input('Authorization', `Bearer ${token}`))) },
      { case: 'API key, record cached (SHA-256 + constant-time compare)', ...(await time(apiKey, () => input('X-API-Key', created.key))) },
    ]
  } finally {
    await directory.close()
    await rm(dir, { recursive: true, force: true })
  }
}
