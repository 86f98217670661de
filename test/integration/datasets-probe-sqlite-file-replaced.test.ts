// Found by an adversarial probe: a scheduled report's SQLite file is rebuilt and renamed over the
// old one (the usual way to replace a file whole). The datasource kept the handle it opened at
// start, so every dataset went on answering the old file's rows, without a word, until a restart.
import { rename } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { get as httpGet } from 'node:http'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

let gw: TestGateway
let dir = ''

/** A report file of `rows` rows, each saying which build it is. */
function buildReport(path: string, build: string, rows: number): void {
  const db = new DatabaseSync(path)
  db.exec("CREATE TABLE report (id INTEGER PRIMARY KEY, build TEXT, filler TEXT)")
  db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows}) INSERT INTO report SELECT i, '${build}', printf('%.200c', 'x') FROM n`)
  db.close()
}

async function replaceReport(build: string, rows: number): Promise<void> {
  buildReport(join(dir, 'next.db'), build, rows)
  await rename(join(dir, 'next.db'), join(dir, 'report.db'))
}

beforeAll(async () => {
  gw = await startTestGateway((gatewayDir) => {
    dir = gatewayDir
    buildReport(join(dir, 'report.db'), 'monday', 3)
    return {
      datasources: [{ name: 'reports', type: 'sqlite', path: join(dir, 'report.db'), key: 'a-test-key-of-32-characters-long' }],
      routes: [{ id: 'daily', methods: ['GET'], path: '/ds/daily', public: true, dataset: { source: 'reports', sql: 'SELECT DISTINCT build, count(*) AS n FROM report GROUP BY build' } }, { id: 'rows', methods: ['GET'], path: '/ds/rows', public: true, dataset: { source: 'reports', sql: 'SELECT id, build, filler FROM report ORDER BY id' } }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
})

async function builds(): Promise<unknown[]> {
  const res = await request(`${gw.url}/ds/daily`)
  return ((await res.body.json()) as { rows: unknown[] }).rows
}

it('a file renamed over the datasource\'s is read from the next query on', async () => {
  expect(await builds()).toEqual([{ build: 'monday', n: 3 }])
  await replaceReport('tuesday', 4)
  expect(await builds()).toEqual([{ build: 'tuesday', n: 4 }])
  await replaceReport('wednesday', 5)
  expect(await builds()).toEqual([{ build: 'wednesday', n: 5 }])
})

it('an answer streaming from the old file when it is replaced ends whole, from the old file', async () => {
  await replaceReport('thursday', 50_000)
  // Held: the client reads nothing until the file is replaced, so the gateway is mid-answer.
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    httpGet(`${gw.url}/ds/rows?format=csv`, resolve).on('error', reject)
  })
  expect(res.statusCode).toBe(200)
  res.pause()
  await replaceReport('friday', 2)
  expect(await builds()).toEqual([{ build: 'friday', n: 2 }])
  const chunks: Buffer[] = []
  res.on('data', (chunk: Buffer) => chunks.push(chunk))
  res.resume()
  await new Promise((resolve) => res.on('close', resolve))
  expect(res.complete, gw.logs.filter((line) => line.includes('error') || line.includes('fail')).join('\n')).toBe(true)
  const lines = Buffer.concat(chunks).toString().trimEnd().split('\r\n')
  expect(lines).toHaveLength(50_001)
  expect(lines.slice(1).every((line) => line.includes(',thursday,'))).toBe(true)
})
