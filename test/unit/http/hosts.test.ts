// server.hosts: which client Host headers X-Forwarded-Host may repeat.
import { describe, expect, it } from 'vitest'
import { hostAllowList, parseHostPattern, type HostPattern } from '../../../src/http/hosts.ts'

function allowList(...texts: string[]) {
  return hostAllowList(texts.map((text) => {
    const parsed = parseHostPattern(text)
    if (!parsed.ok) throw new Error(parsed.message)
    return parsed.value as HostPattern
  }))
}

describe('server.hosts', () => {
  it('matches exact names case-insensitively, on any port unless the entry names one', () => {
    const hosts = allowList('API.example.com', 'admin.example.com:8443', '10.0.0.5', '[::1]:8080')
    for (const host of ['api.example.com', 'Api.Example.COM', 'api.example.com:443', 'admin.example.com:8443', '10.0.0.5:80', '[::1]:8080']) {
      expect(hosts.matches(host), host).toBe(true)
    }
    for (const host of ['admin.example.com', 'admin.example.com:443', 'evil.example.com', 'api.example.com.evil', 'api.example.com:', 'api.example.com:x', 'api.example.com:99999', 'api.example.com:65536', '[::1]', '[::1]:9', '']) {
      expect(hosts.matches(host), host).toBe(false)
    }
  })

  it('*.example.com stands for one or more whole labels, never the bare name or a look-alike', () => {
    const hosts = allowList('*.example.com')
    for (const host of ['a.example.com', 'a.b.example.com:8080', 'A-1.Example.com']) expect(hosts.matches(host), host).toBe(true)
    for (const host of ['example.com', '.example.com', '..example.com', 'evil-example.com', 'a..example.com', '-a.example.com', 'a.example.com.evil.org']) {
      expect(hosts.matches(host), host).toBe(false)
    }
  })

  it('matches nothing when empty', () => {
    expect(allowList().matches('localhost')).toBe(false)
  })

  it.each(['*', '*.', 'api.*.com', 'a*.example.com', 'http://api.example.com', 'api.example.com:99999', 'api.example.com:', ':8080', 'api example.com', '*.[::1]'])('refuses %s', (text) => {
    const parsed = parseHostPattern(text)
    expect(parsed.ok).toBe(false)
    if (!parsed.ok) expect(parsed.message).toContain(`invalid host "${text}"`)
  })
})
