// The provider's tokens kept with a session open only with the session's cookie.
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { openTokens, sealTokens } from '../../../src/identity/sessions/seal.ts'

describe('sealed session tokens', () => {
  it('open with the cookie that sealed them, and with no other', () => {
    const cookie = randomBytes(32).toString('base64url')
    const sealed = sealTokens({ idToken: 'id.token.here', refreshToken: 'refresh-123' }, cookie) as string
    expect(sealed).not.toContain('refresh-123')
    expect(openTokens(sealed, cookie)).toEqual({ idToken: 'id.token.here', refreshToken: 'refresh-123' })
    expect(openTokens(sealed, randomBytes(32).toString('base64url'))).toBeNull()
    const tampered = Buffer.from(sealed, 'base64url')
    tampered.writeUInt8((tampered.at(-1) as number) ^ 1, tampered.length - 1)
    expect(openTokens(tampered.toString('base64url'), cookie)).toBeNull()
    expect(sealTokens({ idToken: null, refreshToken: null }, cookie)).toBeNull()
    expect(openTokens(null, cookie)).toBeNull()
  })
})
