// Found by the limits and forward-auth probe (lf3): RateLimit's t (seconds until a limit is whole
// again) was the store's reset rounded up, and the stores keep a rate's interval rounded (to 1/1024
// ms in memory, to a microsecond in Redis): a hair long for about half the rates that do not divide
// evenly. A bucket spent at once by 6/s restores in 1000.002 ms, and said t=2 beside its own
// RateLimit-Policy's w=1 (7/m: t=61 beside w=60, 13/h: t=3601 beside w=3600); a client pacing by it
// waited a second more than the config asks. t now reads the reset as the configured rate would.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { parseRate, type LimitConfig } from '../../../src/config/index.ts'
import { enforceLimits, type Limiter, type LimitedRequest, type LimitVerdict } from '../../../src/limits/index.ts'
import { stateHeader } from '../../../src/limits/headers.ts'
import { compileRouteLimits, type RouteLimits } from '../../../src/limits/route-limits.ts'
import { createMemoryStore } from '../../../src/limits/stores/memory.ts'
import { createLogger } from '../../../src/telemetry/index.ts'

const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) })
const caller = { identity: null, roles: [], clientIp: '127.0.0.1', route: { id: 'r' }, headers: {} } as unknown as LimitedRequest

function limitsOf(rate: string, burst?: number): RouteLimits {
  const parsed = parseRate(rate)
  if (!parsed.ok) throw new Error(parsed.message)
  const limit = { name: 'l', key: 'route', rate: parsed.value, ip_prefix_v6: 64, ...(burst === undefined ? {} : { burst }) } as LimitConfig
  return compileRouteLimits(['l'], [limit]) as RouteLimits
}

/** `count` requests at one instant of the memory store's clock; the verdicts. */
function takeAtOnce(limits: RouteLimits, count: number): LimitVerdict[] {
  const limiter: Limiter = { store: createMemoryStore({ maxKeys: 100, now: () => 1_800_000_000_000 }), onError: 'deny', logger: quiet }
  return Array.from({ length: count }, () => enforceLimits(limiter, caller, limits) as LimitVerdict)
}

describe('RateLimit t of a rate whose interval the stores round up', () => {
  it.each([['6/s', 1], ['7/s', 1], ['9/s', 1], ['60/s', 1], ['7/m', 60], ['11/m', 60], ['13/h', 3600]])('%s spent at once: t=%i, its policy\'s w', (rate, w) => {
    const limits = limitsOf(rate)
    const burst = limits.parts[0]!.rate!.burst
    expect(limits.policyHeader).toBe(`"l";q=${burst};w=${w}`)
    const verdicts = takeAtOnce(limits, burst + 1)
    expect(verdicts[burst - 1]!.state).toBe(`"l";r=0;t=${w}`)
    expect(verdicts[burst]!.error?.code).toBe('rate_limited')
    expect(verdicts[burst]!.state).toBe(`"l";r=0;t=${w}`)
  })

  it('half spent: 6 of a burst of 12 at 6/s are back in one second, not two', () => {
    expect(takeAtOnce(limitsOf('6/s', 12), 6)[5]!.state).toBe('"l";r=6;t=1')
  })

  it('as Redis keeps it, in whole microseconds: 6/s spent at once is 1000002 µs, t=1', () => {
    const limits = limitsOf('6/s')
    const us = limits.parts[0]!.rate!.intervalUs as number
    expect(us).toBe(166_667)
    expect(stateHeader(limits, [{ remaining: 0, resetMs: (6 * us) / 1000 }])).toBe('"l";r=0;t=1')
  })

  it('still rounds a reset past a whole second up: a client that waits t finds it whole', () => {
    const limits = limitsOf('6/s')
    expect(stateHeader(limits, [{ remaining: 0, resetMs: 1_001 }])).toBe('"l";r=0;t=2')
    expect(stateHeader(limitsOf('1/s'), [{ remaining: 0, resetMs: 1_000.001 }])).toBe('"l";r=0;t=2')
    expect(stateHeader(limitsOf('1/s'), [{ remaining: 0, resetMs: 1_000 }])).toBe('"l";r=0;t=1')
  })
})
