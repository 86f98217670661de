import { describe, expect, it } from 'vitest'
import { bearerToken } from '../../../src/http/index.ts'

describe('the bearer token of an Authorization header (RFC 6750 §2.1)', () => {
  it('takes the token after "Bearer" in any case, one or more spaces or tabs, trailing blanks ignored', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi')
    expect(bearerToken('bearer  abc')).toBe('abc')
    expect(bearerToken('BEARER\tabc \t')).toBe('abc')
  })

  it('says the header is missing when there is none or it is blank', () => {
    expect(bearerToken(undefined)).toMatchObject({ problem: 'missing' })
    expect(bearerToken(' \t')).toMatchObject({ problem: 'missing' })
  })

  it('names another scheme', () => {
    expect(bearerToken('Basic dXNlcjpwYXNz')).toEqual({ problem: 'other-scheme', scheme: 'Basic' })
  })

  it('refuses "Bearer" without exactly one token', () => {
    expect(bearerToken('Bearer')).toMatchObject({ problem: 'malformed' })
    expect(bearerToken('Bearer a b')).toMatchObject({ problem: 'malformed' })
    expect(bearerToken('Bearer:abc')).toMatchObject({ problem: 'other-scheme' })
  })
})
