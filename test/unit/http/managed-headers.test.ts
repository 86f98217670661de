// The one list of managed headers, read the way folding upstream stacks read names.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { connectionNamed, foldHeaderName, isManagedVariant, isReservedForConfig, MANAGED_REQUEST_HEADERS } from '../../../src/http/managed-headers.ts'

/** A managed name respelled: any letter's case changed, any `-` written as another token character. */
const respelled = (name: string) =>
  fc.array(fc.tuple(fc.boolean(), fc.constantFrom('-', '_', '.', '~', '!', '|')), { minLength: name.length, maxLength: name.length })
    .map((choices) => [...name].map((c, i) => {
      const [upper, dash] = choices[i] as [boolean, string]
      return c === '-' ? dash : upper ? c.toUpperCase() : c
    }).join(''))

const removedByGateway = (name: string) => {
  const lower = name.toLowerCase()
  return MANAGED_REQUEST_HEADERS.has(lower) || isManagedVariant(lower)
}

describe('managed request headers', () => {
  it('every respelling of a managed name is removed', () => {
    const managed = fc.constantFrom(
      ...MANAGED_REQUEST_HEADERS, 'x-bouncer-roles', 'x-forwarded-prefix', 'x-forwarded-ssl',
      // Other identity-aware proxies' families.
      'x-auth-request-user', 'x-pomerium-claim-email', 'x-amzn-oidc-data', 'x-ms-client-principal-name', 'cf-access-authenticated-user-email',
      'x-goog-authenticated-user-email', 'x-ssl-client-cert', 'ssl-client-verify', 'x-client-cert-present', 'tailscale-user-login',
    )
    fc.assert(fc.property(managed.chain(respelled), (name) => removedByGateway(name)))
  })

  it('a name that folds to no managed one is kept, underscores or not', () => {
    for (const name of [
      'x_custom', 'accept_language', 'x-bouncers', 'x-forwardedness', 'trace_parent', 'content-type', 'x-api-key',
      // Near other proxies' names, but a client's own: OpenStack's X-Auth-Token, Cloudflare's Cf-Ray, Google's API client.
      'x-auth-token', 'x-auth-user', 'x-authenticity', 'cf-ray', 'x-remote-address-book', 'x-goog-api-client', 'x-ms-request-id', 'x-ssl',
    ]) {
      expect(removedByGateway(name), name).toBe(false)
    }
  })

  it('folds every character other than a letter or a digit into -', () => {
    expect(foldHeaderName('x_forwarded.for')).toBe('x-forwarded-for')
    expect(foldHeaderName('x-plain')).toBe('x-plain')
  })

  it('an upstream’s configured headers may not set what the gateway writes, under any spelling', () => {
    for (const name of ['X-Request-Id', 'X_Request_Id', 'x.forwarded.for', 'X_Bouncer_Assertion', 'Transfer_Encoding', 'Content-Length', 'Host', 'Via']) {
      expect(isReservedForConfig(name), name).toBe(true)
    }
    // Other proxies' identity headers are removed from clients, but an upstream may be configured to get one.
    for (const name of ['Authorization', 'X-Api-Key', 'X_Api_Key', 'X-Forwarded-Prefix', 'X-Remote-User', 'Cf-Access-Client-Id']) expect(isReservedForConfig(name), name).toBe(false)
  })
})

describe('connectionNamed', () => {
  it('reads the fields a Connection header names, lower-cased, past its connection options', () => {
    expect(connectionNamed('keep-alive')).toBeNull()
    expect(connectionNamed(' Close ,KEEP-ALIVE, ')).toBeNull()
    expect(connectionNamed('keep-alive, X-Hop,  Authorization')).toEqual(new Set(['x-hop', 'authorization']))
    // Two Connection fields (an upstream's answer): one list.
    expect(connectionNamed(['close', 'X-One, x-two'])).toEqual(new Set(['x-one', 'x-two']))
  })
})
