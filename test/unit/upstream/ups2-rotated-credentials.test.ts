// Which credential values an upstream's answers are searched for across rotations (setResolvedHeaders):
// the current ones and those the last rotations replaced, kept through refreshes that change nothing
// of this upstream's, a few rotations' worth.
import { describe, expect, it } from 'vitest'
import { setResolvedHeaders, type Upstream } from '../../../src/upstream/index.ts'

function upstreamWith(templates: Array<[string, string]>): Upstream {
  return { headerTemplates: templates, headers: [], credentials: [], sentCredentials: [], rotatedOutCredentials: [] } as unknown as Upstream
}

describe('the credentials withheld from an upstream\'s answers across rotations', () => {
  it('keeps the rotated-out values, newest first, a few rotations\' worth', () => {
    const upstream = upstreamWith([['authorization', 'Bearer ${secret:token}'], ['x-tenant', '${secret:tenant}']])
    const values: Record<string, string> = { token: 'token-one-0123456789', tenant: 'tenant-a-0123456789' }
    const apply = () => setResolvedHeaders(upstream, (template) => template.replace(/\$\{secret:(\w+)\}/, (_, name: string) => values[name] as string))
    apply()
    expect(upstream.credentials).toEqual(['Bearer token-one-0123456789', 'token-one-0123456789', 'tenant-a-0123456789'])
    values.token = 'token-two-0123456789'
    apply()
    expect(upstream.credentials).toEqual(['Bearer token-two-0123456789', 'token-two-0123456789', 'tenant-a-0123456789', 'Bearer token-one-0123456789', 'token-one-0123456789'])
    // A refresh for another secret, or none of this upstream's: the old token is still withheld.
    apply()
    expect(upstream.credentials).toContain('token-one-0123456789')
    values.token = 'token-three-0123456789'
    apply()
    expect(upstream.credentials.slice(3)).toEqual(['Bearer token-two-0123456789', 'token-two-0123456789', 'Bearer token-one-0123456789', 'token-one-0123456789'])
    // Bounded: after many rotations the oldest are forgotten.
    for (let i = 0; i < 20; i++) {
      values.token = `token-many-${i}-0123456789`
      apply()
    }
    expect(upstream.credentials).not.toContain('token-one-0123456789')
    expect(upstream.credentials.length).toBeLessThanOrEqual(3 + 16)
  })
})
