// Values a client chose are bounded in the audit record (issue 22), so one request writes a
// record of bounded size; real values arrive whole.
import { describe, expect, it } from 'vitest'
import { GENESIS_HASH, linkLine, recordLine } from '../../../src/audit/record.ts'
import type { RequestContext } from '../../../src/request/index.ts'

function finished(overrides: { path?: string; userAgent?: string; sub?: string; clientId?: string; detail?: string }) {
  return {
    startedAt: Date.UTC(2026, 10, 26, 12, 0, 0),
    startMono: 0,
    id: 'req-1',
    trace: null,
    method: 'GET',
    path: overrides.path ?? '/sales/daily/eu',
    route: { id: 'sales.daily' },
    status: 403,
    decision: 'deny',
    code: 'no_role',
    error: { detail: overrides.detail ?? 'No role.' },
    statement: null,
    identity: { iss: 'https://sso.example.com/', sub: overrides.sub ?? 'svc-looker', clientId: overrides.clientId ?? 'looker-prod' },
    roles: [],
    clientIp: '10.1.2.3',
    headers: { userAgent: overrides.userAgent ?? 'Looker/24.0' },
    upstream: null,
    upstreamStatus: null,
    bytesIn: 0,
    bytesOut: 230,
    limit: null,
  } as unknown as RequestContext
}

const record = (overrides: Parameters<typeof finished>[0]) => linkLine(recordLine(finished(overrides), 'gw-1', 1), GENESIS_HASH)

describe('audit record fields a client chose', () => {
  it('arrive whole at ordinary lengths', () => {
    const r = record({ path: `/${'p'.repeat(2_000)}`, userAgent: 'u'.repeat(512), sub: 's'.repeat(256), detail: 'd'.repeat(1_024) })
    expect(r.path).toHaveLength(2_001)
    expect(r.user_agent).toHaveLength(512)
    expect(r.subject).toHaveLength(256)
    expect(r.detail).toHaveLength(1_024)
  })

  it.each([
    ['path', 2_048, { path: `/${'p'.repeat(9_999)}` }, 10_000],
    ['user_agent', 512, { userAgent: 'u'.repeat(8_000) }, 8_000],
    ['subject', 256, { sub: 's'.repeat(5_000) }, 5_000],
    ['client_id', 256, { clientId: 'c'.repeat(5_000) }, 5_000],
    ['detail', 1_024, { detail: 'd'.repeat(6_000) }, 6_000],
  ] as const)('%s is cut at %i characters, with a marker naming its length', (field, max, overrides, length) => {
    const value = record(overrides)[field] as string
    expect(value).toBe(`${value.slice(0, max)}…(truncated, ${length} chars)`)
  })

  it('a record of a request with every such field huge stays small', () => {
    const huge = 'x'.repeat(60_000)
    const line = recordLine(finished({ path: `/${huge}`, userAgent: huge, sub: huge, clientId: huge, detail: huge }), 'gw-1', 1)
    expect(line.length).toBeLessThan(6_000)
  })
})
