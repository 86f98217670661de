// After sign-in a browser goes back only to a path on this gateway (oauth2-proxy's open-redirect
// CVEs are the list of attempts).
import { describe, expect, it } from 'vitest'
import { safeReturnTo } from '../../../src/identity/sessions/return-to.ts'

describe('safeReturnTo', () => {
  it('keeps a path with its query', () => {
    expect(safeReturnTo('/dash/sales?region=eu#top')).toBe('/dash/sales?region=eu#top')
    expect(safeReturnTo('/')).toBe('/')
  })

  it.each([
    'https://evil.example/',
    '//evil.example/',
    '/\\evil.example',
    '\\\\evil.example',
    '/\t/evil.example',
    '/\n/evil.example',
    ' /evil',
    'javascript:alert(1)',
    '/%2F%2Fevil.example',
    '/%5Cevil.example',
    'evil.example',
    '',
    `/${'a'.repeat(2_100)}`,
  ])('refuses %j', (target) => {
    expect(safeReturnTo(target)).toBeNull()
  })
})
