// Found by an adversarial probe (helper): a paged dataset with a relative time parameter (`-12h`,
// `now`, given or as the default) resolved it anew on each page, so the cursor's scope (the
// parameters' values) differed every time and the second page was always 400 invalid_parameter.
// The cursor is now scoped by the parameters as given, and keeps the values the first page bound.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    datasources: [{ name: 'warehouse', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2 }],
    routes: [
      {
        id: 'ds.recent',
        methods: ['GET'],
        path: '/ds/recent',
        public: true,
        dataset: {
          source: 'warehouse',
          sql: 'SELECT g AS id, :since::timestamptz AS since, :day::date AS day FROM generate_series(1, 25) g',
          params: { since: { type: 'timestamp', default: '-12h' }, day: { type: 'date', default: 'today' } },
          page_size: 10,
        },
      },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
})

interface Page {
  status: number
  body: { rows?: Array<{ id: number; since: string; day: string }>; next?: string | null; code?: string }
}

async function page(query: string): Promise<Page> {
  const res = await request(`${gw.url}/ds/recent?${query}`)
  return { status: res.statusCode, body: (await res.body.json()) as Page['body'] }
}

async function allPages(query: string): Promise<Page[]> {
  const pages = [await page(query)]
  for (let next = pages[0]?.body.next; typeof next === 'string'; next = pages[pages.length - 1]?.body.next) {
    await new Promise((resolve) => setTimeout(resolve, 5)) // `now` has moved on
    pages.push(await page(`${query}${query === '' ? '' : '&'}cursor=${next}`))
    expect(pages[pages.length - 1]?.status).toBe(200)
  }
  return pages
}

describe('paging with a relative time parameter', () => {
  it.each([
    ['as the default (-12h)', ''],
    ['given as -2h', 'since=-2h'],
    ['given as now', 'since=now'],
  ])('%s reaches every page, each bound to the first page\'s instant', async (_what, query) => {
    const pages = await allPages(query)
    expect(pages.map((p) => p.status)).toEqual([200, 200, 200])
    const rows = pages.flatMap((p) => p.body.rows ?? [])
    expect(rows.map((row) => row.id)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1))
    expect(new Set(rows.map((row) => row.since)).size).toBe(1)
    expect(new Set(rows.map((row) => row.day)).size).toBe(1)
  })

  it('a cursor taken to other parameters is still refused', async () => {
    const first = await page('since=-2h')
    const other = await page(`since=-3h&cursor=${first.body.next}`)
    expect(other.status).toBe(400)
    expect(other.body.code).toBe('invalid_parameter')
    const none = await page(`cursor=${first.body.next}`)
    expect(none.status).toBe(400)
  })
})
