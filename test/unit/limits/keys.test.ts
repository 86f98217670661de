// Limit keys (issue 22, point 9): different callers never share a key by spelling, "absent" is one
// budget no sent value can reach, and long values cannot make a key (and the store) large.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Identity, RequestContext } from '../../../src/request/index.ts'
import { keyValue, parseKeySource } from '../../../src/limits/keys.ts'

function caller(options: { headers?: string[]; identity?: Partial<Identity> | null; clientIp?: string } = {}): RequestContext {
  const identity = options.identity === null ? null : { issuerName: 'corp', iss: 'https://idp', sub: 'svc', clientId: null, claims: {}, expiresAt: 0, ...options.identity }
  return {
    identity,
    roles: ['reports'],
    clientIp: options.clientIp ?? '198.51.100.7',
    route: { id: 'r' },
    headers: { forward: options.headers ?? [] },
  } as unknown as RequestContext
}

const header = (value: string | undefined) => keyValue(parseKeySource('header:X-Client', 64), caller({ headers: value === undefined ? [] : ['x-client', value] }))
const claim = (value: unknown) => keyValue(parseKeySource('claim:tenant', 64), caller({ identity: { claims: value === undefined ? {} : { tenant: value } } }))
const principal = (issuerName: string, sub: string) => keyValue(parseKeySource('principal', 64), caller({ identity: { issuerName, sub } }))

describe('header keys', () => {
  it('a client sending the text "(none)" does not share the budget of callers without the header', () => {
    expect(header('(none)')).not.toBe(header(undefined))
    expect(header('-')).not.toBe(header(undefined))
    expect(header('')).not.toBe(header(undefined))
  })

  it('every caller without the header shares one budget, as before', () => {
    expect(header(undefined)).toBe(keyValue(parseKeySource('header:X-Client', 64), caller({ headers: ['x-other', 'a'] })))
  })

  it('no sent value spells the absent key, a hashed key or another value', () => {
    const absent = header(undefined)
    const tricky = fc.oneof(fc.constantFrom('-', '(none)', 's:', '#:', 'h:-', 'j:1', absent, absent.slice(2)), fc.string(), fc.string({ minLength: 60, maxLength: 80 }))
    fc.assert(fc.property(tricky, tricky, (a, b) => {
      expect(header(a)).not.toBe(absent)
      expect(header(a) === header(b)).toBe(a === b)
    }))
  })
})

describe('claim keys', () => {
  it('the string "1" and the number 1 are different tenants', () => {
    expect(claim('1')).not.toBe(claim(1))
    expect(claim('true')).not.toBe(claim(true))
  })

  it('an array is not the string of its JSON, and a string "(none)" is not an absent claim', () => {
    expect(claim(['a', 'b'])).not.toBe(claim('["a","b"]'))
    expect(claim('(none)')).not.toBe(claim(undefined))
    expect(claim('null')).not.toBe(claim(null))
  })

  it('an absent and a null claim are the one "no value" budget', () => {
    expect(claim(null)).toBe(claim(undefined))
  })

  it('equal values share a key; different values of any JSON type do not', () => {
    const value = fc.oneof(fc.jsonValue(), fc.constantFrom('1', 1, '["a"]', ['a'], 'true', true, '-', '(none)'))
    fc.assert(fc.property(value, value, (a, b) => {
      const same = JSON.stringify(a ?? null) === JSON.stringify(b ?? null)
      expect(claim(a) === claim(b)).toBe(same)
    }))
  })

  it('lone surrogates that UTF-8 (and so Redis) would merge stay apart', () => {
    expect(claim('a\ud800')).not.toBe(claim('a\udc00'))
    expect(Buffer.from(claim('a\ud800')).toString()).toBe(claim('a\ud800'))
  })
})

describe('principal keys', () => {
  it('an issuer name holding ":" cannot borrow another issuer\'s subject', () => {
    expect(principal('corp', 'x:svc')).not.toBe(principal('corp:x', 'svc'))
  })

  it('on a public route (no identity) a principal key counts by address, like ip', () => {
    const anonymous = caller({ identity: null, clientIp: '2001:db8:1:2::7' })
    expect(keyValue(parseKeySource('principal', 64), anonymous)).toBe('ip:2001:db8:1:2/64')
    expect(keyValue(parseKeySource('ip', 64), anonymous)).toBe('ip:2001:db8:1:2/64')
  })
})

describe('key size', () => {
  it('a 16 KB header value makes a key of bounded length, distinct from its neighbours', () => {
    const big = 'x'.repeat(16_384)
    expect(header(big).length).toBeLessThan(64)
    expect(header(big)).not.toBe(header(`${big}y`))
    expect(claim(Array.from({ length: 500 }, (_, i) => `group-${i}`)).length).toBeLessThan(64)
    expect(principal('corp', 's'.repeat(1000)).length).toBeLessThan(80)
  })

  it('short values stay readable in the store', () => {
    expect(header('bi-tool')).toBe('h:s:bi-tool')
    expect(claim('acme')).toBe('claim:s:acme')
    expect(claim(42)).toBe('claim:j:42')
    expect(claim(undefined)).toBe('claim:-')
    expect(principal('corp', 'svc-1')).toBe('p:4:corp:s:svc-1')
  })
})
