// An upstream that trusts the gateway's word about who is calling: it verifies X-Bouncer-Assertion
// with jose against the keys the gateway publishes, and answers 401 otherwise.
//
//   GATEWAY_URL=http://127.0.0.1:8080 UPSTREAM_NAME=sales-api node examples/assertion/verify-upstream.ts
import { createServer } from 'node:http'
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'

export interface Caller extends JWTPayload {
  sub: string
  roles: string[]
  /** The identity provider that vouched for the caller. */
  idp: string
}

export interface VerifierOptions {
  /** The gateway's `assertion.issuer` (default `bouncer`). */
  issuer?: string
  /** The shortest time between two JWKS fetches when an unknown kid arrives (jose's default: 30s). */
  cooldownMs?: number
}

/** A verifier for one upstream: the gateway's JWKS is fetched once, cached, and refetched on a new kid. */
export function assertionVerifier(gatewayUrl: string, upstreamName: string, options: VerifierOptions = {}) {
  const issuer = options.issuer ?? 'bouncer'
  const keys = createRemoteJWKSet(new URL('/.well-known/jwks.json', gatewayUrl), options.cooldownMs === undefined ? {} : { cooldownDuration: options.cooldownMs })
  return async (assertion: string | undefined): Promise<Caller> => {
    if (!assertion) throw new Error('no X-Bouncer-Assertion: the request did not come through the gateway')
    // clockTolerance: the gateway stamps `iat` with its own clock; an upstream whose clock is a
    // second behind would otherwise find every fresh assertion "issued in the future".
    const { payload } = await jwtVerify(assertion, keys, { issuer, audience: upstreamName, algorithms: ['ES256'], maxTokenAge: '5m', clockTolerance: '5s' })
    return payload as Caller
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const verify = assertionVerifier(process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080', process.env.UPSTREAM_NAME ?? 'sales-api')
  createServer(async (req, res) => {
    try {
      const caller = await verify(req.headers['x-bouncer-assertion'] as string | undefined)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ hello: caller.sub, roles: caller.roles, via: caller.idp }))
    } catch (err) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: (err as Error).message }))
    }
  }).listen(Number(process.env.PORT ?? 9500), '127.0.0.1')
}
