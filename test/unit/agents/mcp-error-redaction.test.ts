// An upstream MCP server's error, told to the agent and logged without the credentials the gateway
// sent it (servers.ts withoutCredentials). An abort's or a timeout's error is a DOMException, whose
// message has only a getter: writing the redacted message threw a TypeError in its place.
import { Writable } from 'node:stream'
import { expect, it } from 'vitest'
import { upstreamMcpServer } from '../../../src/agents/mcp/servers.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const SECRET = 'tok-3f9a1c77e2'
const logger = createLogger({ destination: new Writable({ write: (_chunk, _encoding, done) => done() }) })
// Nothing listens there: nothing below connects.
const server = upstreamMcpServer({ name: 'tickets', url: 'http://127.0.0.1:9/mcp', headers: { authorization: `Bearer ${SECRET}` }, prefix: true, timeout: 5_000, max_call_time: 60_000, limits: [] }, logger, 1_048_576)

it('a DOMException that echoes the credential comes back redacted, of the same name, not as a TypeError', () => {
  const cleaned = server.withoutCredentials(new DOMException(`the server refused Bearer ${SECRET}`, 'TimeoutError')) as Error
  expect(cleaned).toBeInstanceOf(Error)
  expect(cleaned.name).toBe('TimeoutError')
  expect(cleaned.message).toBe('the server refused Bearer [redacted]')
  expect(JSON.stringify({ message: cleaned.message, cause: String(cleaned.cause) })).not.toContain(SECRET)
})

it('a DOMException with nothing to redact is the error itself', () => {
  const aborted = new DOMException('This operation was aborted', 'AbortError')
  expect(server.withoutCredentials(aborted)).toBe(aborted)
})

it('an Error is redacted in place, its data too', () => {
  const err = Object.assign(new Error(`refused ${SECRET}`), { data: { echoed: `Bearer ${SECRET}` } })
  expect(server.withoutCredentials(err)).toBe(err)
  expect(err.message).toBe('refused [redacted]')
  expect(JSON.stringify(err.data)).not.toContain(SECRET)
})
