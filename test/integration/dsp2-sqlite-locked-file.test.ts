// Found by an adversarial probe: an SQLite file another connection holds locked (a writer
// committing, or in an exclusive transaction) made a dataset read 502 datasource_error at once,
// with an error logged as if the statement were wrong. The gateway now waits for the lock, without
// holding its thread, up to the dataset's timeout: then 504 query_timeout.
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitForMetric } from '../helpers/wait.ts'

let gw: TestGateway
let path = ''

beforeAll(async () => {
  gw = await startTestGateway((dir) => {
    path = join(dir, 'people.db')
    const db = new DatabaseSync(path)
    db.exec("CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('alice')")
    db.close()
    const dataset = (timeout: string) => ({ source: 'lite', sql: 'SELECT name FROM people', timeout })
    return {
      datasources: [{ name: 'lite', type: 'sqlite', path }],
      routes: [
        { id: 'brief', methods: ['GET'], path: '/ds/brief', public: true, dataset: dataset('300ms') },
        { id: 'patient', methods: ['GET'], path: '/ds/patient', public: true, dataset: dataset('20s') },
      ],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

function lockedByWriter(): DatabaseSync {
  const writer = new DatabaseSync(path)
  writer.exec("BEGIN EXCLUSIVE; INSERT INTO people VALUES ('bob')")
  return writer
}

it('a file locked past the dataset\'s timeout is 504 query_timeout, and nothing is logged as a failed statement', async () => {
  const writer = lockedByWriter()
  try {
    const res = await request(`${gw.url}/ds/brief`)
    const body = (await res.body.json()) as { code: string; detail: string }
    expect({ status: res.statusCode, code: body.code }).toEqual({ status: 504, code: 'query_timeout' })
    expect(body.detail).toMatch(/locked/)
    expect(gw.logs.join('')).not.toMatch(/the statement failed/)
  } finally {
    writer.exec('ROLLBACK')
    writer.close()
  }
})

it('a read that meets a writer\'s lock answers once the writer commits, with its rows', async () => {
  const writer = lockedByWriter()
  const answer = request(`${gw.url}/ds/patient`)
  await waitForMetric(gw.adminUrl, 'bouncer_requests_in_flight')
  writer.exec('COMMIT')
  writer.close()
  const res = await answer
  expect(res.statusCode).toBe(200)
  expect(await res.body.json()).toMatchObject({ rows: [{ name: 'alice' }, { name: 'bob' }] })
})
