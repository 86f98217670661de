// The in-process limits stores (memory, and the workers' shared table) read the clock in whole
// milliseconds, so a rate whose burst cannot carry a millisecond's worth of requests passed fewer
// than its rate, silently: 5000/s burst 1 passed 1,000 a second, 900/s burst 1 passed 500, 1500/s
// burst 2 passed 1,333 (Redis counts microseconds and keeps them). bouncer check now warns, from the
// stores' own arithmetic run over a second, and says which burst would keep the rate.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText, parseRate } from '../../../src/config/index.ts'
import { keptShare } from '../../../src/config/limit-checks.ts'
import { takeRate } from '../../../src/limits/bucket.ts'
import { rateSpec } from '../../../src/limits/route-limits.ts'

function check(limit: string, store = ''): string[] {
  const text = `upstreams: [{ name: api, url: "http://127.0.0.1:9" }]\nlimits: [${limit}]\nroutes: [{ id: api, path: "/*", upstream: api, public: true, limits: [fast] }]\n${store}`
  return loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

/** What the stores pass after a flood's first tick: takeRate itself, asked until refused at every millisecond of a second. */
function passedByTheStore(text: string, burst: number): number {
  const spec = rateSpec(rate(text), burst)
  let tat: number | undefined
  let passed = 0
  for (let now = 0; now <= 1000; now++) {
    for (;;) {
      const outcome = takeRate(spec, tat, now)
      if (!outcome.allowed) break
      tat = outcome.tat
      if (now > 0) passed++
    }
  }
  return passed
}

function rate(text: string) {
  const parsed = parseRate(text)
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.value
}

describe('bouncer check: a limit\'s rate the memory store cannot keep with its burst', () => {
  it.each([
    ['5000/s', 1, '1,000', '5,000', 6],
    ['900/s', 1, '500', '900', 2],
    ['1500/s', 2, '1,333', '1,500', 3],
  ])('warns for %s burst %i: it passes %s a second, not %s; burst %i keeps it', (text, burst, kept, configured, enough) => {
    expect(check(`{ name: fast, key: ip, rate: ${text}, burst: ${burst} }`)).toEqual([
      `bouncer.yaml:2:${48 + text.length}: warning: limits[0].burst: rate ${text} with burst ${burst} passes about ${kept} a second, not ${configured}: the memory limits store reads the clock in whole milliseconds, and a caller refused within one loses the rest of it; a burst of ${enough} keeps the rate (or use the redis store, which counts microseconds)`,
    ])
    expect(check(`{ name: fast, key: ip, rate: ${text}, burst: ${enough} }`)).toEqual([])
  })

  it.each(['3000/s burst 3', '100000/s burst 101', '60/s burst 1', '1/s burst 1', '5000/s', '300000/m burst 6'])('is quiet for %s, which it keeps', (both) => {
    const [text, , burst] = both.split(' ')
    expect(check(`{ name: fast, key: ip, rate: ${text}${burst ? `, burst: ${burst}` : ''} }`)).toEqual([])
  })

  it('is quiet with the redis store, which counts microseconds', () => {
    expect(check('{ name: fast, key: ip, rate: 5000/s, burst: 1 }', 'limits_store: { type: redis, url: "redis://127.0.0.1:6379" }\n')).toEqual([])
  })

  it('computes what the store\'s own arithmetic passes', () => {
    for (const text of ['5000/s', '900/s', '1500/s', '3000/s', '999/s', '1001/s', '100000/s', '7000/s', '240000/m', '60/s']) {
      for (const burst of [1, 2, 3, 5, 8, 13]) {
        const perSecond = rate(text).count * 1000 / rate(text).periodMs
        expect(keptShare(rate(text), burst), `${text} burst ${burst}`).toBeCloseTo(perSecond >= 50 ? Math.min(1, passedByTheStore(text, burst) / perSecond) : 1, 9)
      }
    }
  })
})
