// The gateway's own origin against a browser's Origin (identity/origin.ts).
import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import type { RequestHeaders } from '../../../src/http/index.ts'
import type { CredentialInput } from '../../../src/identity/authenticate.ts'
import { checkOrigin, publicOrigin } from '../../../src/identity/origin.ts'

function post(host: string, origin: string, secure: boolean): CredentialInput {
  return { headers: { host } as RequestHeaders, rawHeaders: ['Host', host, 'Origin', origin], query: '', socket: {} as Socket, method: 'POST', secure }
}

describe('checkOrigin', () => {
  // Found by the CORS probe: nginx's `proxy_set_header Host $host:$server_port` names the default port,
  // which no browser's Origin does: every session POST was refused.
  it('takes an Origin without the default port a Host names', () => {
    for (const [host, origin, secure] of [['example.com:443', 'https://example.com', true], ['example.com:80', 'http://example.com', false]] as const) {
      const input = post(host, origin, secure)
      const own = publicOrigin(input, {}, 'Sign-in')
      expect(own).toBe(`${origin}:${secure ? 443 : 80}`) // the redirect URI's, as the Host made it
      expect(() => checkOrigin(input, own, 'session cookie', true)).not.toThrow()
    }
  })

  it('still refuses another port, scheme or host', () => {
    for (const origin of ['https://example.com:8443', 'http://example.com', 'https://evil.example']) {
      const input = post('example.com:443', origin, true)
      expect(() => checkOrigin(input, publicOrigin(input, {}, 'Sign-in'), 'session cookie', true), origin).toThrow(/cross-site request forgery/)
    }
  })
})
