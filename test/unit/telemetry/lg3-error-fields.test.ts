// pino serialises an Error only under `err`: one logged under any other field (`{ error: e }`,
// `{ cause: e }`, an error in a list or inside another field) was written as `{}`, its message and
// stack lost. Every Error in a log call's fields is written as the err serializer writes it (type,
// message, code, stack, cause), scrubbed of credentials as the rest of the line is.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../../src/telemetry/logger.ts'

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl'

function logged(...args: [object, string?]): Record<string, unknown> {
  const lines: string[] = []
  const logger = createLogger({ destination: new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString()), done()) }) })
  logger.warn(...(args as [object, string]))
  return JSON.parse(lines[0] as string) as Record<string, unknown>
}

class TimeoutFailure extends Error {
  override name = 'TimeoutFailure'
  code = 'ETIMEDOUT'
}

describe('an Error under a field other than err', () => {
  it('is written with its type, message, code and stack', () => {
    const line = logged({ error: new TimeoutFailure('the store did not answer'), cause: new RangeError('out of range') }, 'failed')
    expect(line.error).toMatchObject({ type: 'TimeoutFailure', message: 'the store did not answer', code: 'ETIMEDOUT', stack: expect.stringContaining('TimeoutFailure: the store did not answer') })
    expect(line.cause).toMatchObject({ type: 'RangeError', message: 'out of range', stack: expect.stringContaining('RangeError: out of range') })
  })

  it('in a list or inside another field, and its own cause, are written too', () => {
    const line = logged({ errors: [new Error('first'), new Error('second', { cause: new Error('beneath') })], outcome: { worker: 'w1', failure: new Error('inner') } }, 'failed')
    expect(line.errors).toMatchObject([{ type: 'Error', message: 'first' }, { type: 'Error', message: 'second', cause: { message: 'beneath' } }])
    expect(line.outcome).toMatchObject({ worker: 'w1', failure: { type: 'Error', message: 'inner' } })
  })

  it('is scrubbed of credentials in its message and stack', () => {
    const line = logged({ error: new Error(`the provider refused ${JWT}`) }, 'failed')
    expect(line.error).toMatchObject({ message: 'the provider refused [redacted]' })
    expect(JSON.stringify(line)).not.toContain(JWT.slice(-20))
  })

  it('an error that is its own cause, or an AggregateError, is written whole (the first threw from the log call)', () => {
    const looped = new Error('loop')
    looped.cause = looped
    const line = logged({ err: looped, error: new AggregateError([new Error('127.0.0.1 refused'), looped], 'connect failed') }, 'failed')
    expect(line.err).toMatchObject({ message: 'loop', cause: '[Circular]' })
    expect(line.error).toMatchObject({ type: 'AggregateError', message: 'connect failed', errors: [{ message: '127.0.0.1 refused' }, { message: 'loop', cause: '[Circular]' }] })
  })

  it('leaves err and an Error passed as the first argument to the err serializer', () => {
    expect(logged({ err: new Error('under err') }, 'failed').err).toMatchObject({ type: 'Error', message: 'under err' })
    expect(logged(new Error('alone')).err).toMatchObject({ type: 'Error', message: 'alone' })
  })
})
