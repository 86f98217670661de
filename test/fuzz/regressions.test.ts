// What the fuzz targets found, as a user meets it: one readable test per bug fixed. The shrunk
// counterexamples themselves are kept as examples of their targets (test/fuzz/targets/*).
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText, parseGlob } from '../../src/config/index.ts'
import type { GatewayError } from '../../src/errors/index.ts'
import { parseTarget } from '../../src/http/request-target.ts'
import { cpuMs } from './lib.ts'

function check(text: string): { ok: boolean; lines: string[] } {
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  return { ok: loaded.config !== undefined, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

describe('bouncer check on YAML aliases (config.yaml-text, config.large)', () => {
  it('an alias to an anchor that is not set is an error at the alias, not a crash', () => {
    const text = 'upstreams:\n  - name: api\n    url: http://127.0.0.1:9500\nroutes:\n  - id: r\n    path: /r\n    upstream: *api\n'
    expect(check(text)).toEqual({ ok: false, lines: ['bouncer.yaml:7:15: Unresolved alias (the anchor must be set before the alias): api'] })
  })

  it('an alias bomb (anchors doubling each other) is an error, not a crash', () => {
    const lines = ['a0: &a0 [x, x]']
    for (let i = 1; i <= 12; i++) lines.push(`a${i}: &a${i} [*a${i - 1}, *a${i - 1}]`)
    expect(check(lines.join('\n'))).toEqual({ ok: false, lines: ['bouncer.yaml:2:10: Excessive alias count indicates a resource exhaustion attack'] })
  })
})

describe('deep nesting (config.large, in the long run)', () => {
  it.each([
    ['nested block sequences and a "}"', `${'- '.repeat(5_000)}}`],
    ['the long run\'s 64 KB counterexample', `${'- '.repeat(32_767)}}`],
  ])('%s: an error, not a stack overflow', (_what, text) => {
    expect(check(text)).toEqual({ ok: false, lines: ['bouncer.yaml:1:1: the file nests too deeply to be read (a config nests a few levels)'] })
  })

  it('nesting yaml reports itself stays a YAML error', () => {
    const { ok, lines } = check(`${'- '.repeat(5_000)}x\n`)
    expect(ok).toBe(false)
    expect(lines[0]).toMatch(/^bouncer\.yaml:\d+:\d+: /)
  })
})

describe('large maps (config.large, in the long run)', () => {
  it('a map of 10,000 keys loads in linear time; a repeated key is still an error at the key', () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => `    X-Header-${i}: v\n`).join('')
    const text = `upstreams:\n  - name: api\n    url: http://127.0.0.1:9500\n    headers:\n${keys}    X-Header-7: again\n`
    const before = process.threadCpuUsage()
    const { ok, lines } = check(text)
    const used = process.threadCpuUsage(before)
    expect(ok).toBe(false)
    expect(lines).toEqual([`bouncer.yaml:${10_005}:5: Map keys must be unique`])
    // Linear: a few hundred ms here. yaml's own duplicate-key check took about 4 s on this map.
    expect(cpuMs(used)).toBeLessThan(1_500)
  })
})

describe('${env:NAME} (config.mutated)', () => {
  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('${env:%s} is "not set" unless the environment has it', (name) => {
    const text = `admin:\n  token: \${env:${name}}\n`
    expect(check(text)).toEqual({ ok: false, lines: [`bouncer.yaml:2:10: admin.token: environment variable ${name} is not set`] })
    expect(loadConfigText(text, 'bouncer.yaml', { [name]: 'from-env' }).config?.admin.token).toBe('from-env')
  })
})

describe('globs on long values (values.large)', () => {
  const glob = (text: string) => {
    const parsed = parseGlob(text)
    if (!parsed.ok) throw new Error(parsed.message)
    return parsed.value
  }

  // A trust rule's `subject` or claim glob runs on the caller's claim values, on every request.
  it('a glob with two * on a 64 KB claim value costs linear work, not seconds', () => {
    const value = 'a'.repeat(65_536)
    const before = process.threadCpuUsage()
    expect(glob('*a*b').matches(value)).toBe(false)
    const used = process.threadCpuUsage(before)
    // Linear work is well under a millisecond here; the RegExp took 2.6 s for the first glob alone.
    expect(cpuMs(used)).toBeLessThan(500)
  })

  it.each([
    ['*', '', true], ['?', '', false], ['?', 'x', true], ['a*', 'a', true], ['*a', 'ba', true], ['a*a', 'a', false],
    ['a*b*c', 'abc', true], ['a*b*c', 'acb', false], ['*?b', 'ab', true], ['*?b', 'b', false], ['svc-?-*', 'svc-a-x', true],
    ['a.b', 'aXb', false], ['(a)+', '(a)+', true], ['x*', 'x\ny', true],
  ])('"%s" on "%s": %s', (text, value, expected) => {
    expect(glob(text).matches(value)).toBe(expected)
  })
})

describe('paths that bouncer explain can be given (paths.canonical)', () => {
  const refusal = (path: string) => {
    try {
      parseTarget(path, undefined)
    } catch (err) {
      return (err as GatewayError).code
    }
    return 'accepted'
  }

  it.each(['/\ud800', '/a\udfffb', '/x/\ud83d/y'])('an unpaired surrogate (%j) is bad_path: it has no UTF-8 form to forward', (path) => {
    expect(refusal(path)).toBe('bad_path')
  })

  it('a surrogate pair is a character like any other: matched decoded, forwarded as UTF-8', () => {
    expect(parseTarget('/caf\u00e9/\u{1f600}', undefined)).toMatchObject({ path: '/caf%C3%A9/%F0%9F%98%80', segments: ['caf\u00e9', '\u{1f600}'] })
  })
})

describe('durations and rates within their bounds (values.duration, values.rate)', () => {
  it.each([
    ['1e20 ms', '99999999999999999999ms'],
    ['400 digits (Infinity)', `${'9'.repeat(400)}ms`],
    ['one day too many', '36501d'],
  ])('a retention of %s is refused', (_what, duration) => {
    const { ok, lines } = check(`audit:\n  retention: ${duration}\n`)
    expect(ok).toBe(false)
    expect(lines).toEqual([expect.stringMatching(/^bouncer\.yaml:2:14: audit\.retention: invalid duration .*at most 36500d \(100 years\)$/)])
  })

  it('36500d (100 years) is the longest duration', () => {
    expect(loadConfigText('audit:\n  retention: 36500d\n', 'bouncer.yaml', {}).config?.audit.retention).toBe(36_500 * 86_400_000)
  })

  it.each([
    ['2^53 + 1', '9007199254740993/s'],
    ['400 digits (Infinity)', `${'1'.repeat(400)}/m`],
    ['16 digits', '1000000000000000/s'],
  ])('a rate of %s is refused: N has at most 15 digits', (_what, rate) => {
    const { ok, lines } = check(`limits:\n  - { name: l, key: ip, rate: ${rate} }\n`)
    expect(ok).toBe(false)
    expect(lines.join('\n')).toContain('N from 1 to 999999999999999')
  })

  it('a burst of 16 digits is refused; 15 digits are fine', () => {
    expect(check('limits:\n  - { name: l, key: ip, rate: 10/s, burst: 1000000000000000 }\n').ok).toBe(false)
    expect(check('limits:\n  - { name: l, key: ip, rate: 100000/s, burst: 999999999999999 }\n').ok).toBe(true)
    expect(check('limits:\n  - { name: l, key: ip, quota: 999999999999999/d }\n').ok).toBe(true)
  })
})

describe('durations that become timers (config.mutated)', () => {
  const issuer = '{ name: corp, issuer: "https://sso.example.com", audiences: [api], KEY: VALUE }'
  it.each([
    ['server.shutdown_timeout', 'server: { shutdown_timeout: VALUE }', '1:29'],
    ['audit.flush_interval', 'audit: { sinks: [], flush_interval: VALUE }', '1:37'],
    ['secrets.refresh_interval', 'secrets: { store: { type: env }, refresh_interval: VALUE }', '1:52'],
    ['limits_store.timeout', 'limits_store: { type: redis, url: "redis://127.0.0.1:6379", timeout: VALUE }', '1:70'],
    ['issuers[0].jwks_refresh_interval', `issuers: [${issuer.replace('KEY', 'jwks_refresh_interval')}]`, '1:101'],
    ['issuers[0].jwks_cooldown', `issuers: [${issuer.replace('KEY', 'jwks_cooldown')}]`, '1:93'],
    ['mcp.servers[0].timeout', `mcp: { resource: "https://gw.example.com/mcp", servers: [{ name: t, url: "http://127.0.0.1:7000/mcp", timeout: VALUE }] }`, '1:112'],
    ['mcp.servers[0].max_call_time', `mcp: { resource: "https://gw.example.com/mcp", servers: [{ name: t, url: "http://127.0.0.1:7000/mcp", max_call_time: VALUE }] }`, '1:118'],
  ])('%s: 25d is refused (Node would run the timer at once), 24d is fine', (path, yaml, at) => {
    expect(check(yaml.replace('VALUE', '25d'))).toEqual({ ok: false, lines: [`bouncer.yaml:${at}: ${path}: at most 24d: Node runs a longer timer at once`] })
    expect(check(yaml.replace('VALUE', '24d')).lines.filter((line) => !line.includes('warning'))).toEqual([])
  })

  it('durations compared to a clock, not run as timers, may be longer', () => {
    expect(check('audit: { sinks: [], retention: 3650d }\nassertion: { rotate_every: 365d }\n')).toEqual({ ok: true, lines: [] })
  })
})
