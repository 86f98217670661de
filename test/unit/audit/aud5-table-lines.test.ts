// `bouncer audit`'s table a line at a time (src/audit/table.ts auditTableLines): its columns are
// sized by the first page, so the table needs no more than a page in memory.
import { expect, it } from 'vitest'
import { auditTableLines, formatAuditTable } from '../../../src/audit/table.ts'
import { chain, GENESIS_HASH, type AuditRecord } from '../../../src/audit/record.ts'

const recordOf = (route: string): AuditRecord => chain({
  id: `00000000-0000-4000-8000-${route.length.toString().padStart(12, '0')}`, time: '2025-12-01T00:02:30.000Z', request_id: 'r1', method: 'GET', path: '/sales',
  route, status: 200, decision: 'allow', statement: 'S', subject: 'looker', roles: [], source_ip: '127.0.0.1', duration_ms: 1, bytes_in: 0, bytes_out: 0,
}, GENESIS_HASH)

async function* each(records: AuditRecord[]): AsyncGenerator<AuditRecord> {
  yield* records
}

async function linesOf(records: AuditRecord[], sample: number): Promise<string[]> {
  const lines: string[] = []
  for await (const line of auditTableLines(each(records), sample)) lines.push(line)
  return lines
}

it('is the whole table when the records fit in the first page', async () => {
  const records = [recordOf('a'), recordOf('sales.daily'), recordOf('b')]
  expect(await linesOf(records, 1000)).toEqual(formatAuditTable(records).split('\n'))
})

it('sizes the columns by the first page; a wider cell later moves the rest of its own line only', async () => {
  const lines = await linesOf([recordOf('a'), recordOf('b'), recordOf('sales.daily.eu'), recordOf('c')], 2)
  expect(lines).toEqual([
    'TIME (UTC)               STATUS  DECISION  REQUEST     ROUTE  SUBJECT  WHY',
    '2025-12-01 00:02:30.000  200     allow     GET /sales  a      looker   S',
    '2025-12-01 00:02:30.000  200     allow     GET /sales  b      looker   S',
    '2025-12-01 00:02:30.000  200     allow     GET /sales  sales.daily.eu  looker   S',
    '2025-12-01 00:02:30.000  200     allow     GET /sales  c      looker   S',
  ])
})

it('prints no line, not even the header, for no records', async () => {
  expect(await linesOf([], 1000)).toEqual([])
})

it('asks for the record after the first page only once that page is out', async () => {
  const asked: number[] = []
  async function* counted(): AsyncGenerator<AuditRecord> {
    for (let i = 0; i < 5; i++) {
      asked.push(i)
      yield recordOf('r')
    }
  }
  const lines = auditTableLines(counted(), 3)
  for (let i = 0; i < 4; i++) await lines.next() // the header and three rows
  expect(asked).toEqual([0, 1, 2])
})
