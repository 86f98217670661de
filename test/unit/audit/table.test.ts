// `bouncer audit`'s table for people (src/audit/table.ts).
import { describe, expect, it } from 'vitest'
import { formatAuditTable } from '../../../src/audit/table.ts'
import { chain, GENESIS_HASH } from '../../../src/audit/record.ts'

const record = chain({
  id: '00000000-0000-4000-8000-000000000001', time: '2025-12-01T00:02:30.000Z', request_id: 'r1', method: 'GET', path: '/sales/daily/eu',
  route: 'sales.daily', status: 403, decision: 'deny', code: 'policy_denied', statement: 'NoCustomerPII', subject: 'looker-reports', roles: [],
  source_ip: '127.0.0.1', duration_ms: 1, bytes_in: 0, bytes_out: 0,
}, GENESIS_HASH)

describe('the audit table', () => {
  it('has a line per record however many there are (bouncer audit --limit 150000)', () => {
    // Its column widths were Math.max over every row spread as arguments: 'bouncer: internal error: Maximum call stack size exceeded'.
    const lines = formatAuditTable(new Array(150_000).fill(record)).split('\n')
    expect(lines).toHaveLength(150_001)
    expect(lines[0]).toBe('TIME (UTC)               STATUS  DECISION  REQUEST              ROUTE        SUBJECT         WHY')
    expect(lines[150_000]).toBe('2025-12-01 00:02:30.000  403     deny      GET /sales/daily/eu  sales.daily  looker-reports  policy_denied (NoCustomerPII)')
  })

  it('says what a change made from the command line did, and why, where a refusal says its code', () => {
    const change = chain({
      id: '00000000-0000-4000-8000-000000000002', time: '2025-12-01T00:03:00.000Z', request_id: 'r2', method: 'CLI', path: 'bouncer keys revoke 3f9c0e7a1b2d4c58',
      status: 200, decision: 'allow', detail: 'Revoked API key 3f9c0e7a1b2d4c58 of principal looker. Reason: leaked', issuer: 'os', subject: 'alice', credential: 'os_user',
      roles: [], source_ip: '-', duration_ms: 12, bytes_in: 0, bytes_out: 0, instance: 'cli:host',
    }, GENESIS_HASH)
    expect(formatAuditTable([change]).split('\n')[1]).toMatch(/CLI bouncer keys revoke 3f9c0e7a1b2d4c58 +- +alice +Revoked API key 3f9c0e7a1b2d4c58 of principal looker\. Reason: leaked$/)
  })
})
