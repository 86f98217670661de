// A revocation through the admin API whose audit record cannot be written (the audit log cannot be
// opened) is still made: recordAdminChange says so with an error naming the caller and the change,
// which operators alert on, instead of throwing (the answer would have said the revocation failed).
import { hostname } from 'node:os'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { adminChainId, recordAdminChange } from '../../../src/admin/change-audit.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = []
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>)
        callback()
      },
    }),
  })
  return { logger, lines }
}

describe('recordAdminChange', () => {
  it('logs an error, and does not throw, when the audit log cannot be opened', async () => {
    const { logger, lines } = capturingLogger()
    const written = await recordAdminChange(
      { sinks: [{ type: 'sqlite', path: '/dev/null/no-such-dir/audit.db' }] } as never,
      logger,
      { path: '/api/keys/0123456789abcdef', detail: 'Revoked API key 0123456789abcdef of principal looker.', keyId: '0123456789abcdef' },
      { caller: { access: 'admin', via: 'token' }, method: 'DELETE', sourceIp: '127.0.0.1', userAgent: 'test', started: performance.now() },
    )
    expect(written).toBe(false)
    expect(lines).toEqual([expect.objectContaining({
      level: 'error', msg: 'admin change made, but NOT AUDITED: its audit record was not written',
      method: 'DELETE', path: '/api/keys/0123456789abcdef', subject: 'admin.token', detail: 'Revoked API key 0123456789abcdef of principal looker.',
    })])
    expect(adminChainId()).toBe(`admin:${hostname()}`)
  })
})
