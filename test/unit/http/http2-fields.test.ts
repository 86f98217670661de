// HTTP2_SINGLE_VALUE_FIELDS is node:http2's own list: each of them repeated makes it refuse the
// answer, and a field not in it (Set-Cookie, Vary, Link, …) may repeat.
import { once } from 'node:events'
import { connect, createServer, type ServerHttp2Stream } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { HTTP2_SINGLE_VALUE_FIELDS, keepFirstOfSingleValues } from '../../../src/http/index.ts'

const refused: string[] = []
const server = createServer()
server.on('stream', (stream: ServerHttp2Stream, headers) => {
  const name = String(headers['x-field'])
  try {
    stream.respond({ ':status': 200, [name]: ['a', 'b'] }, { endStream: true })
  } catch {
    refused.push(name)
    stream.close()
  }
})

beforeAll(async () => {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

it('is the list of fields node:http2 refuses to repeat', async () => {
  const repeatable = ['set-cookie', 'vary', 'link', 'cache-control', 'www-authenticate', 'access-control-allow-origin', 'x-frame-options', 'via', 'content-security-policy']
  const client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  try {
    for (const name of [...HTTP2_SINGLE_VALUE_FIELDS, ...repeatable]) {
      const stream = client.request({ ':path': '/', 'x-field': name })
      stream.on('error', () => {})
      stream.resume()
      await once(stream, 'close')
    }
  } finally {
    client.close()
  }
  expect(refused.sort()).toEqual([...HTTP2_SINGLE_VALUE_FIELDS].sort())
})

it('keeps the first value of a repeated single-value field, and every value of the others', () => {
  const headers = { 'content-type': ['text/plain', 'text/html'], 'set-cookie': ['a=1', 'b=2'], etag: '"v1"' }
  keepFirstOfSingleValues(headers)
  expect(headers).toEqual({ 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], etag: '"v1"' })
})
