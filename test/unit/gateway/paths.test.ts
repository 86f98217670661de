import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../../src/errors/index.ts'
import { parseTarget } from '../../../src/gateway/paths.ts'

function badPath(target: string, host = 'gw.local'): string {
  try {
    parseTarget(target, host)
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError)
    expect((err as GatewayError).code).toBe('bad_path')
    return (err as GatewayError).detail
  }
  throw new Error(`${target} was accepted`)
}

describe('request targets that are refused with bad_path', () => {
  it.each([
    ['/a/%2F/b', 'encoded slash'],
    ['/a/%2f', 'encoded slash'],
    ['/a%5Cb', 'encoded backslash'],
    ['/a\\b', 'backslash'],
    ['/a/../b', 'dot segment'],
    ['/a/./b', 'dot segment'],
    ['/..', 'dot segment'],
    ['/a/%2e%2e/b', 'encoded dot segment'],
    ['/a/%2E/b', 'encoded dot segment'],
    ['/a/.%2e/b', 'mixed dot segment'],
    ['/a/..;/admin', 'Tomcat path-parameter dot segment'],
    ['/a/.;x/b', 'path-parameter dot segment'],
    ['/a/%00', 'encoded NUL'],
    ['/a/\u0000', 'raw NUL'],
    ['/a/%0d%0aSet-Cookie:x', 'encoded CRLF'],
    ['/a/\u001f', 'control character'],
    ['/a/%7F', 'encoded DEL'],
    ['/a/%zz', 'invalid escape'],
    ['/a/%E0%A4%A', 'truncated UTF-8'],
    ['/a/%C0%AF', 'overlong UTF-8'],
    ['/a#frag', 'fragment'],
    ['http://evil.example/a', 'absolute-form for another host'],
    ['*', 'asterisk-form'],
    ['evil.example:443', 'authority-form'],
  ])('%s (%s)', (target) => {
    expect(badPath(target)).toBeTruthy()
  })
})

describe('canonical paths', () => {
  it.each([
    ['/sales/daily/eu', '/sales/daily/eu', ['sales', 'daily', 'eu']],
    ['/', '/', ['']],
    ['/a/', '/a/', ['a', '']],
    ['//a///b', '/a/b', ['a', 'b']],
    ['/a%7Eb', '/a~b', ['a~b']],
    ['/a%41', '/aA', ['aA']],
    ['/hello%20world', '/hello%20world', ['hello world']],
    ['/q%3fx', '/q%3Fx', ['q?x']],
    ['/%C3%A9t%C3%A9', '/%C3%A9t%C3%A9', ['été']],
    ['/a..b/...', '/a..b/...', ['a..b', '...']],
    ['/a%252e%252e', '/a%252e%252e', ['a%2e%2e']],
  ])('%s → %s', (target, path, segments) => {
    const parsed = parseTarget(target, 'gw.local')
    expect(parsed.path).toBe(path)
    expect(parsed.segments).toEqual(segments)
  })

  it('keeps the query string as sent', () => {
    expect(parseTarget('/a?x=1&y=%2F', 'h')).toEqual({ path: '/a', segments: ['a'], query: 'x=1&y=%2F' })
  })

  it('accepts absolute-form for the host the request is addressed to', () => {
    expect(parseTarget('http://GW.local/a/b?x', 'gw.local')).toEqual({ path: '/a/b', segments: ['a', 'b'], query: 'x' })
  })
})
