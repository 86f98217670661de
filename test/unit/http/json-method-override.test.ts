// A JSON POST's top-level `_method` (src/http/method-override.ts jsonBodyOf, jsonMethodOverrides):
// which bodies are read as JSON (Laravel's isJson: the Content-Type contains `/json` or `+json`),
// and how the key is read (as PHP's json_decode and JSON.parse read it: the exact key, escapes
// decoded, the last duplicate). The gateway's behaviour with a real upstream is in
// test/integration/authz-json-method-override.test.ts.
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../../src/errors/index.ts'
import { isMethodToken } from '../../../src/http/described-request.ts'
import { jsonMethodOverrides, unreadableJsonCharset } from '../../../src/http/json-method-override.ts'
import { jsonBodyOf } from '../../../src/http/method-override.ts'

const post = (contentType: string | undefined, contentLength: number | undefined = 10, chunked = false) => jsonBodyOf('POST', { contentType, contentLength, chunked })
const read = (body: string | Buffer) => jsonMethodOverrides('POST', Buffer.isBuffer(body) ? body : Buffer.from(body))

describe('jsonBodyOf: the POSTs whose body is read as JSON', () => {
  it('application/json, +json suffixes, any case and parameters, and whatever else Laravel\'s isJson takes', () => {
    for (const type of ['application/json', 'Application/JSON; charset=utf-8', 'application/merge-patch+json', 'application/vnd.api+JSON', 'text/json', 'multipart/form-data; boundary=+json', 'application/x-www-form-urlencoded; a=/json']) {
      expect(post(type), type).toBe(true)
    }
    expect(post('application/json', undefined, true)).toBe(true)
  })

  it('no other request: another method, no body, another type, no Content-Type', () => {
    expect(post(undefined)).toBe(false)
    expect(post('application/json', 0)).toBe(false)
    expect(jsonBodyOf('POST', { contentType: 'application/json', contentLength: undefined, chunked: false })).toBe(false)
    expect(jsonBodyOf('PUT', { contentType: 'application/json', contentLength: 10, chunked: false })).toBe(false)
    for (const type of ['application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded', 'application/jso']) expect(post(type), type).toBe(false)
  })

  it('a charset body-parser decodes before parsing (utf-16, utf-32, utf-7) is named; UTF-8 or none is not', () => {
    expect(unreadableJsonCharset('application/json; charset=UTF-16LE')).toBe('UTF-16LE')
    expect(unreadableJsonCharset('application/json; charset="utf-7"')).toBe('utf-7')
    expect(unreadableJsonCharset('application/json; charset=utf-8; charset=utf-32')).toBe('utf-32')
    // A quoted-pair is unescaped by the content-type module body-parser reads the charset with.
    expect(unreadableJsonCharset('application/json; charset="utf\\-16"')).toBe('utf-16')
    for (const type of ['application/json', 'application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'application/json; charset=utf-8:2000', 'application/json; charset=iso-8859-1']) {
      expect(unreadableJsonCharset(type), type).toBeNull()
    }
  })
})

describe('jsonMethodOverrides: a top-level _method, as json_decode and JSON.parse read it', () => {
  it('the exact key, its value upper-cased; escapes in the key and value decoded; white space, a BOM', () => {
    expect(read('{"_method":"DELETE"}')).toEqual(['DELETE'])
    expect(read(' \r\n\t{ "title" : "x" , "_method" : "delete" } ')).toEqual(['DELETE'])
    expect(read('{"\\u005fmethod":"DELETE"}')).toEqual(['DELETE'])
    expect(read('{"_m\\u0065thod":"\\u0044ELETE"}')).toEqual(['DELETE'])
    expect(read('{"_method":" PATCH "}')).toEqual(['PATCH'])
    expect(read(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"_method":"DELETE"}')]))).toEqual(['DELETE'])
    // Express's method-override takes an array's first element: every string of one is read.
    expect(read('{"_method":["PUT","DELETE"]}')).toEqual(['PUT', 'DELETE'])
  })

  it('after values of every kind, nested ones with quotes, brackets and "_method" inside their strings', () => {
    const before = '"a":{"_method":"PUT","b":["}",{"c":"\\"]\\\\"}]},"n":-1.5e3,"t":true,"z":null,"s":"{\\"_method\\":\\"PUT\\"}"'
    expect(read(`{${before},"_method":"DELETE"}`)).toEqual(['DELETE'])
    expect(read(`{${before}}`)).toEqual([])
  })

  it('a duplicate key: the last one, as both parsers keep it', () => {
    expect(read('{"_method":"DELETE","_method":"PATCH"}')).toEqual(['PATCH'])
    expect(read('{"_method":"PATCH","_method":"DELETE"}')).toEqual(['DELETE'])
    expect(read('{"_method":"DELETE","_method":null}')).toEqual([])
  })

  it('not read: nested, another key PHP does not mangle, a value that is no string, POST itself, a body that is no object', () => {
    for (const body of ['{"data":{"_method":"DELETE"}}', '[{"_method":"DELETE"}]', '{"_METHOD":"DELETE"}', '{".method":"DELETE"}', '{"%5Fmethod":"DELETE"}', '{"_method ":"DELETE"}', '{"_method\\u0000":"DELETE"}',
      '{"_method":1}', '{"_method":true}', '{"_method":{"m":"DELETE"}}', '{"_method":[["DELETE"]]}', '{"_method":"POST"}', '{"_method":""}', '"_method"', '{}', '']) {
      expect(read(body), body).toEqual([])
    }
  })

  it('a body that is not valid JSON is read as far as it goes (the upstream obeys none of it): never less than a valid one', () => {
    expect(read('{"_method":"DELETE"')).toEqual(['DELETE'])
    expect(read('{"_method":"DELETE",}')).toEqual(['DELETE'])
    expect(read('{"_method":"DELETE"} trailing')).toEqual(['DELETE'])
    expect(read('{"a":[1,2}')).toEqual([])
    expect(read('{"a')).toEqual([])
  })

  it('agrees with JSON.parse on valid JSON: 20,000 generated bodies (seeded), nested, escaped, duplicated', () => {
    let seed = 42
    const rnd = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
      return (seed >>> 16) % n // an LCG's low bits repeat soon
    }
    const keys = ['"_method"', '"\\u005fmethod"', '"a"', '"_m\\u0065thod"', '"x\\"_method"', '"_method\\\\"']
    const value = (depth: number): string => {
      const kind = rnd(depth > 3 ? 4 : 7)
      if (kind === 0) return JSON.stringify(['DELETE', 'patch', 'x"y', '\\', '{}', 'POST'][rnd(6)])
      if (kind === 1) return ['1', 'true', 'null', '-2.5e3'][rnd(4)] as string
      if (kind === 2 || kind === 5) return `[${Array.from({ length: rnd(4) }, () => value(depth + 1)).join(rnd(2) ? ',' : ' , ')}]`
      return `{${Array.from({ length: rnd(4) }, () => `${keys[rnd(keys.length)]}${rnd(2) ? ':' : ' :\n'}${value(depth + 1)}`).join(',')}}`
    }
    let named = 0
    for (let n = 0; n < 20_000; n++) {
      const body = `${[' ', '', '\t'][rnd(3)]}${value(0)}${[' ', '', '\r\n'][rnd(3)]}`
      const parsed = JSON.parse(body) as unknown
      const top = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>)._method : undefined
      const strings = (Array.isArray(top) ? top : [top]).filter((v): v is string => typeof v === 'string').map((v) => v.trim().toUpperCase())
      const methods = strings.filter((v) => v !== 'POST' && v !== '')
      if (methods.some((v) => !isMethodToken(v))) expect(() => read(body), body).toThrow(GatewayError)
      else expect(read(body), body).toEqual([...new Set(methods)])
      if (strings.length > 0) named++
    }
    expect(named).toBeGreaterThan(500) // not vacuous: 820 of them name a method at the top
  })

  it('a value that is no method: 400, as the query\'s', () => {
    expect(() => read('{"_method":"DE LETE"}')).toThrow(GatewayError)
  })

  it('a large body is read in one pass', () => {
    const big = `{${Array.from({ length: 100_000 }, (_, i) => `"k${i}":{"v":["x\\"y",${i}]}`).join(',')},"_method":"DELETE"}`
    expect(big.length).toBeGreaterThan(2_000_000)
    const started = performance.now()
    expect(read(big)).toEqual(['DELETE'])
    expect(performance.now() - started).toBeLessThan(500)
  })
})
