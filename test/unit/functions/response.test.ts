// A handler's result becomes the response API Gateway would send for payload format 2.0: inferred
// when there is no statusCode, taken as it is when there is one, refused when AWS would call it a
// malformed Lambda proxy response.
import { describe, expect, it } from 'vitest'
import { httpResponseOf } from '../../../src/functions/response.ts'

const ok = (result: unknown) => {
  const made = httpResponseOf(result)
  if (!made.ok) throw new Error(made.message)
  return made.response
}
const refused = (result: unknown) => {
  const made = httpResponseOf(result)
  if (made.ok) throw new Error('accepted')
  return made.message
}

describe('format 2.0 responses', () => {
  it('infers 200 application/json when there is no statusCode: a string is the body itself, anything else its JSON', () => {
    const json = ['content-type', 'application/json']
    expect(ok('Hello from Lambda!')).toEqual({ status: 200, headers: json, body: 'Hello from Lambda!' })
    expect(ok({ message: 'Hello from Lambda!' })).toEqual({ status: 200, headers: json, body: '{"message":"Hello from Lambda!"}' })
    expect(ok([1, 2])).toEqual({ status: 200, headers: json, body: '[1,2]' })
    expect(ok(undefined)).toEqual({ status: 200, headers: json, body: 'null' })
    expect(ok(false)).toEqual({ status: 200, headers: json, body: 'false' })
    // What API Gateway reads is the JSON: toJSON applies, an undefined statusCode is no statusCode.
    expect(ok({ statusCode: undefined, when: new Date(0) })).toEqual({ status: 200, headers: json, body: '{"when":"1970-01-01T00:00:00.000Z"}' })
  })

  it('refuses what JSON.stringify would refuse or read otherwise, also on a response object that skips it (issue 15); throws on what the handler\'s own code throws', () => {
    const throwing = { statusCode: 200, body: 'x' }
    Object.defineProperty(throwing, 'headers', { enumerable: true, get: () => { throw new Error('no headers today') } })
    // The handler's error, thrown on: its message is for the log, never the client (worker.ts).
    expect(() => httpResponseOf(throwing)).toThrow('no headers today')
    expect(refused({ statusCode: 200, body: 'x', isBase64Encoded: 1n })).toMatch(/cannot be serialized as JSON/)
    expect(refused({ statusCode: 200, body: 'x', extra: 1n })).toMatch(/cannot be serialized as JSON/)
    expect(() => httpResponseOf({ statusCode: 200, body: 'x', get toJSON() { throw new Error('no toJSON today') } })).toThrow('no toJSON today')
    const { proxy, revoke } = Proxy.revocable({ statusCode: 200, body: 'x' }, {})
    revoke()
    expect(() => httpResponseOf(proxy)).toThrow(/revoked/)
    const headers = Object.create({ toJSON: () => { throw new Error('inherited toJSON') } }) as Record<string, string>
    headers['x-a'] = 'b'
    expect(() => httpResponseOf({ statusCode: 200, body: 'x', headers })).toThrow('inherited toJSON')
    const cookies = ['a=1']
    Object.assign(cookies, { toJSON: () => { throw new Error('cookies toJSON') } })
    expect(() => httpResponseOf({ statusCode: 200, body: 'x', cookies })).toThrow('cookies toJSON')
    // What it skips JSON.stringify for comes out as the long way made it.
    const echo = { statusCode: 200, headers: { 'content-type': 'application/json', 'x-n': 1 }, cookies: ['c=3'], body: 'y'.repeat(1000), isBase64Encoded: false }
    expect(ok(echo)).toEqual({ status: 200, headers: ['content-type', 'application/json', 'x-n', '1', 'set-cookie', 'c=3'], body: 'y'.repeat(1000) })
  })

  it('takes a structured response as it is: headers in lower case, cookies as Set-Cookie, base64 bodies decoded', () => {
    expect(ok({ statusCode: 201, headers: { 'Content-Type': 'text/plain', 'X-Count': 3, 'X-Flag': true }, cookies: ['a=1', 'b=2; Secure'], body: 'made' })).toEqual({
      status: 201,
      headers: ['content-type', 'text/plain', 'x-count', '3', 'x-flag', 'true', 'set-cookie', 'a=1', 'set-cookie', 'b=2; Secure'],
      body: 'made',
    })
    const binary = ok({ statusCode: 200, body: Buffer.from([0, 1, 254, 255]).toString('base64'), isBase64Encoded: true })
    expect(Buffer.from(binary.body as Uint8Array)).toEqual(Buffer.from([0, 1, 254, 255]))
    expect(ok({ statusCode: 204 })).toEqual({ status: 204, headers: [], body: '' })
  })

  it('drops the headers the gateway writes itself: framing and hop-by-hop, Content-Length, X-Request-Id', () => {
    const response = ok({ statusCode: 200, headers: { connection: 'close', 'Transfer-Encoding': 'chunked', 'content-length': '1', 'x-request-id': 'forged', vary: 'accept' }, body: 'x' })
    expect(response.headers).toEqual(['vary', 'accept'])
  })

  it('refuses what API Gateway calls a malformed response', () => {
    expect(refused({ statusCode: '200', body: 'x' })).toMatch(/statusCode must be an integer from 200 to 599/)
    expect(refused({ statusCode: 99 })).toMatch(/statusCode/)
    expect(refused({ statusCode: 200, body: { a: 1 } })).toMatch(/body must be a string/)
    expect(refused({ statusCode: 200, headers: { 'x-list': ['a', 'b'] } })).toMatch(/header "x-list" must be a string/)
    expect(refused({ statusCode: 200, headers: { 'bad name': 'x' } })).toMatch(/header "bad name"/)
    expect(refused({ statusCode: 200, headers: { 'x-split': 'a\r\nx-injected: 1' } })).toMatch(/header "x-split"/)
    expect(refused({ statusCode: 200, cookies: 'a=1' })).toMatch(/cookies must be an array of strings/)
    expect(refused({ statusCode: 200, body: 'not base64', isBase64Encoded: true })).toMatch(/body is not base64: the character " " at 3/)
    expect(refused({ statusCode: 200, body: 'QQ===', isBase64Encoded: true })).toMatch(/the "=" at 2 is not padding at its end/)
    expect(refused({ statusCode: 200, body: 'Q=Q=', isBase64Encoded: true })).toMatch(/the "=" at 1 is not padding/)
    expect(refused({ statusCode: 200, body: '+_8A', isBase64Encoded: true })).toMatch(/mixes the standard/)
    expect(refused({ statusCode: 200, body: 'QQ=', isBase64Encoded: true })).toMatch(/3 characters is no length base64 has/)
    expect(refused({ statusCode: 200, body: 'QUJDR', isBase64Encoded: true })).toMatch(/5 characters/)
    const circular: Record<string, unknown> = {}
    circular.self = circular
    expect(refused(circular)).toMatch(/cannot be serialized as JSON/)
    expect(refused(10n)).toMatch(/cannot be serialized as JSON/)
  })
})
