// What an upstream socket's errors after the TLS handshake become (upstream/targets.ts): the
// retry rules (errors.ts) read a TLS code as a connect failure, retried for any method; after the
// handshake only a refused client certificate is one (the upstream read nothing). Found by review:
// another alert or a bad record after a POST was written kept its ERR_SSL_ code and the POST was
// sent to the next target.
import { expect, it } from 'vitest'
import { failureOf } from '../../../src/upstream/errors.ts'
import { renameSocketError } from '../../../src/upstream/targets.ts'

const error = (code: string, message = code, reason?: string) => Object.assign(new Error(message), { code, reason })

it('a TLS error after the handshake is a reset, unless it is the handshake\'s refusal of our certificate', () => {
  for (const code of ['ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR', 'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC', 'ERR_SSL_WRONG_VERSION_NUMBER']) {
    const err = error(code)
    expect(renameSocketError(err, null)).toBeNull()
    expect(failureOf(err)).toBe('reset')
  }
  const refused = error('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'long OpenSSL text', 'tlsv13 alert certificate required')
  const seen = renameSocketError(refused, null)
  expect(seen).toBe(refused)
  expect(failureOf(refused)).toBe('connect_failure')
  // undici's own "other side closed" that follows it carries the refusal.
  const closed = error('UND_ERR_SOCKET', 'other side closed')
  renameSocketError(closed, seen)
  expect({ code: closed.code, message: closed.message }).toEqual({ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', message: 'the upstream ended the connection with a TLS alert: tlsv13 alert certificate required' })
  expect(failureOf(closed)).toBe('connect_failure')
  const reset = error('ECONNRESET')
  renameSocketError(reset, null)
  expect(failureOf(reset)).toBe('reset')
})
