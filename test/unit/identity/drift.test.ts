import { describe, expect, it } from 'vitest'
import { describeDrift, findDrift } from '../../../src/identity/index.ts'
import { MAX_DRIFT_ISS_CHARS } from '../../../src/identity/drift.ts'

const configured = ['https://sso.example.com/', 'https://login.example.org/tenant-a/v2.0']

describe('issuer drift', () => {
  it.each([
    ['https://sso.example.com', 'https://sso.example.com/', ['a trailing slash']],
    ['http://sso.example.com/', 'https://sso.example.com/', ['the scheme (http instead of https)']],
    ['https://SSO.example.com/', 'https://sso.example.com/', ['letter case']],
    ['HTTPS://sso.example.com/', 'https://sso.example.com/', ['letter case']],
    ['https://login.example.org/TENANT-A/v2.0/', 'https://login.example.org/tenant-a/v2.0', ['a trailing slash', 'letter case']],
    ['sso.example.com/', 'https://sso.example.com/', ['the scheme (none instead of https)']],
  ])('%s drifted from %s', (iss, expected, differences) => {
    expect(findDrift(iss, configured)).toEqual({ configured: expected, differences })
  })

  it.each(['https://sso.example.net/', 'https://evil.example/', 'https://sso.example.com/other'])('%s is just unknown', (iss) => {
    expect(findDrift(iss, configured)).toBeUndefined()
  })
})

describe('issuer drift on hostile input', () => {
  it('strips any run of trailing slashes', () => {
    expect(findDrift(`https://sso.example.com${'/'.repeat(200)}`, configured)).toBeUndefined() // the same slash-ness: no difference
    expect(findDrift(`https://login.example.org/tenant-a/v2.0${'/'.repeat(200)}`, configured)).toEqual({ configured: 'https://login.example.org/tenant-a/v2.0', differences: ['a trailing slash'] })
  })

  it(`does not look at an iss longer than ${MAX_DRIFT_ISS_CHARS} characters`, () => {
    expect(findDrift(`https://login.example.org/tenant-a/v2.0${'/'.repeat(MAX_DRIFT_ISS_CHARS)}`, configured)).toBeUndefined()
  })

  it.each(['://sso.example.com/', 'ht tp://sso.example.com/', 'https:/sso.example.com/', 'https://sso.example.com/\n', '1https://sso.example.com/'])('%j is not a drift', (iss) => {
    expect(findDrift(iss, configured)).toBeUndefined()
  })

  it('the detail repeats at most 256 characters of the iss', () => {
    expect(describeDrift('x'.repeat(1_000), { configured: 'https://sso.example.com/', differences: ['letter case'] })).toContain('…(truncated, 1000 chars)')
  })
})
