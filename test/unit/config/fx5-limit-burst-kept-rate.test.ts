// The in-process limits stores (memory, and the workers' shared table) read the clock in whole
// milliseconds, so a rate whose burst could not carry a millisecond's worth of requests passed fewer
// than its rate: 5000/s burst 1 passed 1,000 a second. bouncer check warned about it. The stores now
// count fractions of a millisecond (limits/clock.ts; test/unit/limits/lim4-sub-ms-clock.test.ts) and
// keep such a rate, so the check says nothing about it, whichever store keeps it.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

function check(limit: string, store = ''): string[] {
  const text = `upstreams: [{ name: api, url: "http://127.0.0.1:9" }]\nlimits: [${limit}]\nroutes: [{ id: api, path: "/*", upstream: api, public: true, limits: [fast] }]\n${store}`
  return loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('bouncer check: a fast rate with a small burst', () => {
  it.each(['5000/s burst 1', '900/s burst 1', '1500/s burst 2', '100000/s burst 1', '300000/m burst 1', '60/s burst 1', '5000/s'])('is quiet for %s: every store keeps it', (both) => {
    const [text, , burst] = both.split(' ')
    expect(check(`{ name: fast, key: ip, rate: ${text}${burst ? `, burst: ${burst}` : ''} }`)).toEqual([])
    expect(check(`{ name: fast, key: ip, rate: ${text}${burst ? `, burst: ${burst}` : ''} }`, 'limits_store: { type: redis, url: "redis://127.0.0.1:6379" }\n')).toEqual([])
  })
})
