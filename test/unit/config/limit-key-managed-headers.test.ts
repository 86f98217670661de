// Found by an adversarial probe (helper): a limit keyed by header:NAME, where the gateway consumes or strips NAME (X-Real-IP, X-Forwarded-For, Forwarded, Host, Authorization…), was accepted, and limits never see such a header: every caller shared one budget.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function check(key: string): string[] {
  const text = `upstreams: [{ name: api, url: "http://127.0.0.1:9" }]\nlimits: [{ name: by-header, key: "${key}", rate: 1/m }]\n`
  return loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('bouncer check: limits[].key header:NAME', () => {
  it.each(['X-Real-IP', 'X-Forwarded-For', 'x-forwarded-for', 'X_Forwarded_For', 'Forwarded', 'X-Client-IP', 'X-Forwarded-Client'])('refuses %s, a client address the gateway manages, and points to key: ip', (name) => {
    expect(check(`header:${name}`)).toEqual([
      `bouncer.yaml:2:34: limits[0].key: the gateway manages the ${name} header itself and limits never see it: header:${name} would be one budget shared by every caller; count callers by key: ip, the real client address (list your proxies in server.trusted_proxies)`,
    ])
  })

  it.each(['Host', 'Authorization', 'AUTHORIZATION'])('refuses %s and points to key: principal', (name) => {
    expect(check(`header:${name}`)).toEqual([
      `bouncer.yaml:2:34: limits[0].key: the gateway manages the ${name} header itself and limits never see it: header:${name} would be one budget shared by every caller; count callers by key: principal`,
    ])
  })

  it.each(['X-Request-Id', 'traceparent', 'Connection', 'X-Bouncer-Assertion', 'X_Real_IP'])('refuses %s, another header the gateway manages', (name) => {
    expect(check(`header:${name}`)).toEqual([expect.stringContaining(`limits[0].key: the gateway manages the ${name} header itself`)])
  })

  it.each(['X-Team', 'X-Client', 'User-Agent', 'X-API-Key', 'X-Realip'])('accepts %s, a header limits see', (name) => {
    expect(check(`header:${name}`)).toEqual([])
  })
})
