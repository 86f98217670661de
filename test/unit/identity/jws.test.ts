// Signature checks: valid for every algorithm an issuer may use (signed by jose, an independent
// implementation), and refused whenever the key does not fit the algorithm exactly.
import type { KeyObject } from 'node:crypto';
import { generateKeyPairSync } from 'node:crypto'
import { CompactSign, generateKeyPair } from 'jose'
import { describe, expect, it } from 'vitest'
import { toKeyObject, verifySignature } from '../../../src/identity/jws.ts'

async function signed(alg: string, options: Record<string, unknown> = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...options })
  const jws = await new CompactSign(new TextEncoder().encode('{"sub":"svc"}')).setProtectedHeader({ alg }).sign(privateKey)
  const dot = jws.lastIndexOf('.')
  return { input: jws.slice(0, dot), signature: jws.slice(dot + 1), key: toKeyObject(publicKey) }
}

const publicKeyOf = (type: 'rsa' | 'ec', options: object): KeyObject => generateKeyPairSync(type as 'rsa', options as never).publicKey as unknown as KeyObject

describe('verifySignature', () => {
  it.each(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])('accepts a valid %s signature', async (alg) => {
    const { input, signature, key } = await signed(alg)
    expect(verifySignature(alg, key, input, signature)).toBe(true)
  })

  it('refuses a signature spelled with unused bits set in its last character (one token, one spelling)', async () => {
    const { input, signature, key } = await signed('ES256') // 64 bytes: 86 characters, the last carrying 2 bits and 4 unused
    const last = signature.at(-1) as string
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const sameBytes = alphabet[alphabet.indexOf(last) | 0b11] as string
    expect(Buffer.from(signature.slice(0, -1) + sameBytes, 'base64url')).toEqual(Buffer.from(signature, 'base64url'))
    expect(verifySignature('ES256', key, input, signature.slice(0, -1) + sameBytes)).toBe(last === sameBytes)
  })

  it('refuses a signature over other content', async () => {
    const { input, signature, key } = await signed('ES256')
    expect(verifySignature('ES256', key, `${input}x`, signature)).toBe(false)
  })

  it.each([
    ['ES256 with an RSA key', 'ES256', () => publicKeyOf('rsa', { modulusLength: 2048 })],
    ['RS256 with an EC key', 'RS256', () => publicKeyOf('ec', { namedCurve: 'prime256v1' })],
    ['ES256 with a P-384 key', 'ES256', () => publicKeyOf('ec', { namedCurve: 'secp384r1' })],
    ['EdDSA with an EC key', 'EdDSA', () => publicKeyOf('ec', { namedCurve: 'prime256v1' })],
    ['RS256 with a 1024-bit RSA key', 'RS256', () => publicKeyOf('rsa', { modulusLength: 1024 })],
    ['HS256 (never an issuer algorithm)', 'HS256', () => publicKeyOf('rsa', { modulusLength: 2048 })],
    ['none', 'none', () => publicKeyOf('rsa', { modulusLength: 2048 })],
  ])('refuses %s', async (_name, alg, key) => {
    expect(verifySignature(alg, key(), 'e30.e30', 'AAAA')).toBe(false)
  })

  it('refuses an ES256 signature of the wrong length (DER instead of raw r‖s)', async () => {
    const { input, signature, key } = await signed('ES256')
    expect(verifySignature('ES256', key, input, `${signature}AA`)).toBe(false)
  })

  it('refuses a signature with characters outside base64url', async () => {
    const { input, signature, key } = await signed('RS256')
    expect(verifySignature('RS256', key, input, `${signature.slice(0, -2)}+/`)).toBe(false)
  })

  it('refuses a private key where a public key is expected', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    expect(verifySignature('ES256', privateKey, 'e30.e30', 'A'.repeat(86))).toBe(false)
  })
})
