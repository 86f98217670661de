// The session cookie on the wire: found in any Cookie header (HTTP/2 sends several), written with
// its attributes, and taken out of what goes upstream while the application's own cookies pass.
import { describe, expect, it } from 'vitest'
import { clearCookie, hasCookie, readCookie, setCookie, withoutCookies } from '../../../src/http/index.ts'

describe('cookies', () => {
  it('reads a cookie from any Cookie header, by its exact name', () => {
    const raw = ['Host', 'x', 'Cookie', 'theme=dark; my_session=no', 'cookie', 'session= abc ; lang=en']
    expect(readCookie(raw, 'session')).toBe('abc')
    expect(readCookie(raw, 'my_session')).toBe('no')
    expect(readCookie(raw, 'sess')).toBeUndefined()
    expect(hasCookie(raw, 'session')).toBe(true)
    expect(hasCookie(['Cookie', 'xsession=1'], 'session')).toBe(false)
  })

  it('writes HttpOnly always, SameSite as configured, Secure when asked', () => {
    const settings = { name: 'bouncer_session', secure: true, sameSite: 'lax' as const }
    expect(setCookie(settings, 'v', { maxAgeSeconds: 60 })).toBe('bouncer_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure')
    expect(setCookie({ ...settings, secure: false }, 'v', { maxAgeSeconds: 5, path: '/cb', sameSite: 'strict' })).toBe('bouncer_session=v; Path=/cb; Max-Age=5; HttpOnly; SameSite=Strict')
    expect(clearCookie(settings)).toBe('bouncer_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure')
  })

  it('takes the gateway\'s cookies out of a Cookie header and keeps the rest', () => {
    const withheld = new Set(['bouncer_session', 'bouncer_session_state'])
    expect(withoutCookies('a=1; bouncer_session=s; b=2', withheld)).toBe('a=1; b=2')
    expect(withoutCookies('bouncer_session=s;bouncer_session_state=t', withheld)).toBe('')
    expect(withoutCookies('bouncer_session_x=1', withheld)).toBe('bouncer_session_x=1')
  })
})
