// Found by the limits probe (limfa2): RateLimit-Policy's window was burst × the rate's stored
// interval, which is rounded to a 1/1024 ms (route-limits.ts, binaryInterval) — a hair long for
// about half the rates that do not divide evenly: 6/s said q=6;w=2 (three a second, to a client
// pacing itself by the policy), 7/m said w=61, 13/h w=3601. The window is the config's own:
// burst × period / count, in whole seconds up.
import { describe, expect, it } from 'vitest'
import { parseRate, type LimitConfig } from '../../../src/config/index.ts'
import { compileRouteLimits } from '../../../src/limits/route-limits.ts'

function policyOf(rate: string, burst?: number): string {
  const parsed = parseRate(rate)
  if (!parsed.ok) throw new Error(parsed.message)
  const limit = { name: 'l', key: 'principal', rate: parsed.value, ip_prefix_v6: 64, ...(burst === undefined ? {} : { burst }) } as LimitConfig
  return (compileRouteLimits(['l'], [limit]) as { policyHeader: string }).policyHeader
}

describe('RateLimit-Policy of a rate', () => {
  it('states the configured rate\'s window when its interval is no whole millisecond', () => {
    expect(policyOf('6/s')).toBe('"l";q=6;w=1')
    expect(policyOf('7/s')).toBe('"l";q=7;w=1')
    expect(policyOf('9/s')).toBe('"l";q=9;w=1')
    expect(policyOf('60/s')).toBe('"l";q=60;w=1')
    expect(policyOf('7/m')).toBe('"l";q=7;w=60')
    expect(policyOf('11/m')).toBe('"l";q=11;w=60')
    expect(policyOf('13/h')).toBe('"l";q=13;w=3600')
    expect(policyOf('6/s', 12)).toBe('"l";q=12;w=2')
    expect(policyOf('7/m', 1)).toBe('"l";q=1;w=9')
  })

  it('states it for rates past the stores\' finest interval too', () => {
    expect(policyOf('999999999999999/s')).toBe('"l";q=999999999999999;w=1')
    expect(policyOf('999999999999999/d')).toBe('"l";q=999999999999999;w=86400')
    expect(policyOf('3000000/s', 3)).toBe('"l";q=3;w=1')
  })

  it('keeps what was right: whole intervals, at least a second, at most 15 digits', () => {
    expect(policyOf('10/s', 20)).toBe('"l";q=20;w=2')
    expect(policyOf('3/s')).toBe('"l";q=3;w=1')
    expect(policyOf('1/m', 2)).toBe('"l";q=2;w=120')
    expect(policyOf('100/s', 1)).toBe('"l";q=1;w=1')
    expect(policyOf('1/d', 999999999999999)).toBe('"l";q=999999999999999;w=999999999999999')
  })
})
