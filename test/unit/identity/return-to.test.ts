// After sign-in a browser goes back only to a path on this gateway (oauth2-proxy's open-redirect
// CVEs are the list of attempts).
import { describe, expect, it } from 'vitest'
import { safeReturnTo } from '../../../src/identity/sessions/return-to.ts'

describe('safeReturnTo', () => {
  it('keeps a path with its query', () => {
    expect(safeReturnTo('/dash/sales?region=eu#top')).toBe('/dash/sales?region=eu#top')
    expect(safeReturnTo('/')).toBe('/')
  })

  // Found by an adversarial probe (helper): a raw non-ASCII return_to became a Location Node refuses (500 after sign-in).
  it('answers the path percent-encoded and resolved, never with raw non-ASCII', () => {
    expect(safeReturnTo('/app/\u20ac')).toBe('/app/%E2%82%AC')
    expect(safeReturnTo('/app/caf\u00e9?q=\u00e9#\u00e9')).toBe('/app/caf%C3%A9?q=%C3%A9#%C3%A9')
    expect(safeReturnTo('/app/%E2%82%AC')).toBe('/app/%E2%82%AC')
    expect(safeReturnTo('/a/../b')).toBe('/b')
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
    // Dot segments that resolve to a network path or an encoded slash at the start.
    '/.//evil.example',
    '/%2e//evil.example',
    '/a/..//evil.example',
    '/./%2fevil.example',
    'evil.example',
    '',
    `/${'a'.repeat(2_100)}`,
  ])('refuses %j', (target) => {
    expect(safeReturnTo(target)).toBeNull()
  })
})
