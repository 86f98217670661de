import { describe, expect, it } from 'vitest'
import { findDrift } from '../../../src/identity/index.ts'

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
