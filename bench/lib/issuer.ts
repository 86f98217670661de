// A local token issuer for the benchmark: generated keys, a discovery document and JWKS served over
// real HTTP (the gateway fetches them as from any provider), and tokens minted in bulk.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'

export const BENCH_AUDIENCE = 'api://bouncer-bench'

export interface BenchIssuer {
  issuer: string
  mint(count: number, alg: 'ES256' | 'RS256', claims?: (i: number) => Record<string, unknown>): Promise<string[]>
  writeTokens(file: string, tokens: string[]): Promise<void>
  close(): Promise<void>
}

export async function startBenchIssuer(): Promise<BenchIssuer> {
  const es = await generateKeyPair('ES256', { extractable: true })
  const rs = await generateKeyPair('RS256', { extractable: true })
  const keys: Record<'ES256' | 'RS256', { privateKey: CryptoKey; kid: string }> = {
    ES256: { privateKey: es.privateKey, kid: 'bench-es' },
    RS256: { privateKey: rs.privateKey, kid: 'bench-rs' },
  }
  const jwks = JSON.stringify({
    keys: [
      { ...(await exportJWK(es.publicKey)), kid: 'bench-es', alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(rs.publicKey)), kid: 'bench-rs', alg: 'RS256', use: 'sig' },
    ],
  })
  let issuer = ''
  const server: Server = createServer((req, res) => {
    const body = req.url === '/jwks' ? jwks : JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    issuer,
    async mint(count, alg, claims = (i) => ({ sub: `svc-${i}` })) {
      const now = Math.floor(Date.now() / 1000)
      const out: string[] = []
      for (let i = 0; i < count; i++) {
        out.push(await new SignJWT({ iss: issuer, aud: BENCH_AUDIENCE, iat: now, exp: now + 3_600, tenant: 'acme', ...claims(i) })
          .setProtectedHeader({ alg, kid: keys[alg].kid, typ: 'at+jwt' })
          .sign(keys[alg].privateKey))
      }
      return out
    },
    async writeTokens(file, tokens) {
      await writeFile(file, `${tokens.join('\n')}\n`)
    },
    async close() {
      server.close()
      await once(server, 'close')
    },
  }
}
