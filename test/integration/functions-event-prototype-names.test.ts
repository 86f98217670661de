// Found by an adversarial probe (helper): query parameters and headers named constructor, toString or hasOwnProperty reached the handler mixed with Object.prototype's functions, and one named __proto__ was dropped, as the event was built on plain objects.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    functions: [{ name: 'echo', module: join(FIXTURES, 'echo.ts'), concurrency: 1 }],
    routes: [{ id: 'echo', path: '/echo', function: 'echo', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

/** The event as the handler got it, as JSON text: an object literal would itself drop an own __proto__. */
async function eventText(path: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(`${gw.url}${path}`, { headers })
  expect(res.statusCode).toBe(200)
  const { event } = (await res.body.json()) as { event: unknown }
  return JSON.stringify(event)
}

describe('a function event with names that are Object.prototype members', () => {
  it('query parameters named constructor, toString and hasOwnProperty arrive as sent', async () => {
    const event = JSON.parse(await eventText('/echo?constructor=a&toString=b&hasOwnProperty=c&constructor=d')) as { queryStringParameters: unknown }
    expect(event.queryStringParameters).toEqual({ constructor: 'a,d', toString: 'b', hasOwnProperty: 'c' })
  })

  it('a query parameter named __proto__ is kept', async () => {
    expect(await eventText('/echo?__proto__=a&x=1')).toContain('"queryStringParameters":{"__proto__":"a","x":"1"}')
  })

  it('request headers named constructor and valueof arrive as sent', async () => {
    const event = JSON.parse(await eventText('/echo', { constructor: 'a', valueof: 'b' })) as { headers: Record<string, string> }
    expect(Object.hasOwn(event.headers, 'constructor') && event.headers.constructor).toBe('a')
    expect(event.headers.valueof).toBe('b')
  })
})
