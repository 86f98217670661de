import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../../src/errors/index.ts'
import { parseTarget } from '../../../src/http/index.ts'

/** What a test asserts about a target: `parts` is `path.split('/')` (checked in one test below). */
function parsed(target: string, host = 'h') {
  const { path, segments, query, pathParams } = parseTarget(target, host)
  return { path, segments, query, pathParams }
}

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
    ['/a?x=1#frag', 'fragment after the query'],
    ['/a?#', 'fragment, empty query'],
    ['http://evil.example/a', 'absolute-form for another host'],
    ['*', 'asterisk-form'],
    ['evil.example:443', 'authority-form'],
  ])('%s (%s)', (target) => {
    expect(badPath(target)).toBeTruthy()
  })

  // IIS and Windows trim a trailing dot or space: `admin.` names `admin` there.
  it.each([
    ['/api/admin./users', 'trailing dot'],
    ['/api/admin%2E/users', 'encoded trailing dot'],
    ['/api/admin%2e/users', 'encoded trailing dot, lower case'],
    ['/api/admin%20/users', 'encoded trailing space'],
    ['/api/admin.%20/users', 'dot then space'],
    ['/api/admin%20./users', 'space then dot'],
    ['/api/admin%C2%A0/users', 'trailing no-break space'],
    ['/api/admin%E3%80%80/users', 'trailing ideographic space'],
    ['/api/admin%EF%BB%BF/users', 'trailing byte order mark'],
    ['/api/admin%C2%85/users', 'trailing next line (U+0085)'],
    ['/api/admin%09/users', 'trailing tab (a control character)'],
    ['/api/admin.', 'trailing dot in the last segment'],
    ['/a/...', 'three dots'],
    ['/api/admin.;x/users', 'trailing dot before parameters'],
    ['/api/admin;x./users', 'trailing dot after parameters'],
  ])('%s (%s)', (target) => {
    expect(badPath(target)).toMatch(/"\."|whitespace|control/)
  })

  // Decoded once, these still hold an escape that an upstream decoding again reads as `.`, `/`, `\`, ….
  it.each([
    ['/a%252e%252e', 'double-encoded dots'],
    ['/a/%252e%252e/admin', 'double-encoded dot segment'],
    ['/a/%252E%252E/admin', 'upper-case hex'],
    ['/a/%25252e%25252e/admin', 'triple-encoded dot segment'],
    ['/a/%2525252e/admin', 'quadruple-encoded dot'],
    ['/a%252fadmin', 'double-encoded slash'],
    ['/a%252Fadmin', 'double-encoded slash, upper case'],
    ['/a%25252Fadmin', 'triple-encoded slash'],
    ['/a%255cadmin', 'double-encoded backslash'],
    ['/a%255Cadmin', 'double-encoded backslash, upper case'],
    ['/a%25%32%65', 'an escape assembled from escapes (%25%32%65 → %2e)'],
    ['/a%25%25%32e', 'lenient decoders: %%2e → %.'],
    ['/api/admin%253B/users', 'double-encoded semicolon'],
    ['/api/admin%253Fx', 'double-encoded question mark (ends the path for the next decoder)'],
    ['/api/admin%2523x', 'double-encoded hash'],
    ['/api/a%2500.json', 'double-encoded NUL'],
    ['/api/a%250d%250a', 'double-encoded CR LF'],
    ['/api/admin%2520/users', 'double-encoded trailing space'],
    ['/a/%25252525252525252541', 'nested nine deep'],
  ])('%s (%s)', (target) => {
    expect(badPath(target)).toBeTruthy()
  })

  it.each([
    ['/api/;x/admin', 'a segment of parameters alone (Tomcat reads /api//admin)'],
    ['/api/%3Bx/admin', 'the same, encoded'],
  ])('%s (%s)', (target) => {
    expect(badPath(target)).toMatch(/parameters/)
  })
})

describe('path parameters (;)', () => {
  it.each([
    ['/api/admin;/users', ['api', 'admin', 'users'], '/api/admin;/users'],
    ['/api/admin;jsessionid=x/users', ['api', 'admin', 'users'], '/api/admin;jsessionid=x/users'],
    ['/api/admin%3B/users', ['api', 'admin', 'users'], '/api/admin%3B/users'],
    ['/api/admin%3b/users', ['api', 'admin', 'users'], '/api/admin%3B/users'],
    ['/api/admin%3Bx%3Dy/users', ['api', 'admin', 'users'], '/api/admin%3Bx%3Dy/users'],
    ['/app/;jsessionid=ABC', ['app', ''], '/app/;jsessionid=ABC'],
  ])('%s is matched as %j and forwarded as %s', (target, segments, path) => {
    expect(parsed(target)).toEqual({ path, segments, query: '', pathParams: true })
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
    ['/a..b/.x', '/a..b/.x', ['a..b', '.x']],
    // RFC 3986 §6.2.2.2: only escapes of unreserved characters are decoded; reserved ones stay.
    ['/a%3Db', '/a%3Db', ['a=b']],
    ['/a=b', '/a=b', ['a=b']],
    ['/a%3db%40c%3Ad%2Ce%26f%2Bg%24h%21i%27j%28k%29l%2Am', '/a%3Db%40c%3Ad%2Ce%26f%2Bg%24h%21i%27j%28k%29l%2Am', ['a=b@c:d,e&f+g$h!i\'j(k)l*m']],
    ['/%41%5a%61%7A%30%39%2D%2E%5F%7E', '/AZaz09-._~', ['AZaz09-._~']],
    ['/a%252541', '/a%252541', ['a%2541']],
    ['/100%25', '/100%25', ['100%']],
    ['/a%2525', '/a%2525', ['a%25']],
    ['/API/Users', '/API/Users', ['API', 'Users']],
    ['/a"b{c}', '/a%22b%7Bc%7D', ['a"b{c}']],
  ])('%s → %s', (target, path, segments) => {
    expect(parsed(target, 'gw.local')).toMatchObject({ path, segments, pathParams: false })
  })

  it('keeps the query string as sent', () => {
    expect(parsed('/a?x=1&y=%2F')).toEqual({ path: '/a', segments: ['a'], query: 'x=1&y=%2F', pathParams: false })
  })

  it('forwards a path that needs no change as the very string received', () => {
    const url = '/sales/daily/eu'
    expect(parseTarget(url, 'h').path).toBe(url)
  })

  it('accepts absolute-form for the host the request is addressed to', () => {
    expect(parsed('http://GW.local/a/b?x', 'gw.local')).toEqual({ path: '/a/b', segments: ['a', 'b'], query: 'x', pathParams: false })
  })

  it.each(['/a/b', '/', '/a/', '//a///b/', '/a%3b%7E/b;x/%41', '/API/x%20y'])('%s: parts line up with the canonical path and the segments', (target) => {
    const { path, parts, segments } = parseTarget(target, 'h')
    expect(parts).toEqual(path.split('/'))
    expect(parts).toHaveLength(segments.length + 1)
  })
})

describe('the forwarded form (property)', () => {
  // Pieces that make the tricky cases: escapes (of reserved, unreserved, nested %), dots, spaces,
  // parameters, case, non-ASCII.
  const piece = fc.constantFrom('a', 'B', '.', '/', ';', '=', '~', '%', '%25', '%2e', '%2E', '%3b', '%3B', '%3D', '%20', '%7e', '%41', '%C4%B1', '2', 'e', 'f', '5', 'x=1')
  const target = fc.array(piece, { maxLength: 12 }).map((parts) => `/${parts.join('')}`)

  it('is a fixpoint: what is forwarded parses to the same path and the same matched segments', () => {
    fc.assert(
      fc.property(target, (url) => {
        let first
        try {
          first = parseTarget(url, 'h')
        } catch (err) {
          expect((err as GatewayError).code).toBe('bad_path')
          return
        }
        const again = parseTarget(first.path, 'h')
        expect(again.path).toBe(first.path)
        expect(again.segments).toEqual(first.segments)
        expect(again.pathParams).toBe(first.pathParams)
        expect(first.parts).toEqual(first.path.split('/'))
        // Only what the client sent raw is raw: a ';' or '=' forwarded raw was raw in the request.
        for (const c of [';', '=']) expect(first.path.split(c).length).toBe(url.split(c).length)
      }),
      { numRuns: 2000 },
    )
  })
})
