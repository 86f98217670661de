// A log call's fields are free text as much as its message: a datasource's error quoting the value
// it refused, a URL with an access_token in its query, a header map under `Authorization` (pino's
// redaction paths are lower case). The message was scrubbed of bearer tokens and JWTs, the fields only
// of known secret values and API keys, so a token in a field reached the log line (the admin probe).
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../../src/telemetry/logger.ts'

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl'
const BEARER = 'Bearer opaque-access-token-0123456789'

function logged(fields: object): { line: Record<string, unknown>; text: string } {
  const lines: string[] = []
  const logger = createLogger({ destination: new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString()), done()) }) })
  logger.warn(fields, 'something failed')
  const text = lines[0] as string
  return { line: JSON.parse(text) as Record<string, unknown>, text }
}

describe('credentials in the fields of a log call', () => {
  it('a JWT quoted in a reason, or in a URL\'s query, is redacted', () => {
    const { line, text } = logged({ reason: `invalid input syntax for type integer: "${JWT}"`, url: `https://app.example/cb?access_token=${JWT}&x=1` })
    expect(line.reason).toBe('invalid input syntax for type integer: "[redacted]"')
    expect(line.url).toBe('https://app.example/cb?access_token=[redacted]&x=1')
    expect(text).not.toContain(JWT.slice(-20))
  })

  it('a bearer token under a header name in any case, or in a list, is redacted', () => {
    const { line, text } = logged({ upstream: { headers: { Authorization: BEARER } }, tried: [BEARER] })
    expect(line.upstream).toEqual({ headers: { Authorization: 'Bearer [redacted]' } })
    expect(line.tried).toEqual(['Bearer [redacted]'])
    expect(text).not.toContain('opaque-access-token')
  })

  it('a JWT after a line break in a field is redacted (read as the text, not its JSON escape)', () => {
    const { line, text } = logged({ reason: `the provider said:\n${JWT}` })
    expect(line.reason).toBe('the provider said:\n[redacted]')
    expect(text).not.toContain(JWT.slice(-20))
  })

  it('a field without a credential is logged as it is, and an error beside a token keeps its message', () => {
    const { line } = logged({ err: new Error('refused'), reason: `token ${JWT}`, count: 3, plain: { a: 'eyJ-not-a-token' } })
    expect(line).toMatchObject({ reason: 'token [redacted]', count: 3, plain: { a: 'eyJ-not-a-token' }, err: { type: 'Error', message: 'refused' } })
  })
})
