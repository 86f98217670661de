// Probed (helper), fine: with server.workers: 2, a paging cursor sealed before a reload pages on
// every worker after it, and after a crashed worker's replacement, and a `hash` mask keeps one
// value: a datasource without `key` derives its key from the process's key store, which a reload
// and a replacement keep (datasets/registry.ts, instance/own-keys.ts).
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { crashWorker } from '../helpers/inspector.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

const ADMIN_TOKEN = 'workers-datasets-reload-admin-token-01'

let dir: string
let path: string
let file: string
let gateway: ServeProcess

function config(port: number, routes: object[] = []) {
  return {
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    audit: { sinks: [], spill_dir: join(dir, 'spill') },
    server: { listen: `127.0.0.1:${port}`, workers: 2 },
    datasources: [{ name: 'shop', type: 'sqlite', path }],
    routes: [
      { id: 'orders', methods: ['GET'], path: '/orders', public: true, dataset: { source: 'shop', sql: 'SELECT id, email FROM orders ORDER BY id', page_size: 2, masks: { email: { with: 'hash' } } } },
      ...routes,
    ],
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-datasets-reload-'))
  path = join(dir, 'shop.db')
  const db = new DatabaseSync(path)
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY NOT NULL, email TEXT NOT NULL)')
  for (let i = 1; i <= 10; i++) db.prepare('INSERT INTO orders VALUES (?, ?)').run(i, `user${i}@example.com`)
  db.close()
  ;({ gateway, file } = await serveWithWorkers(dir, (port) => config(port), { nodeArgs: ['--inspect=127.0.0.1:0'] }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

interface Page { next: string; rows: Array<{ id: number; email: string }> }
const page = async (query = '') => {
  const answer = await onNewConnection(`${gateway.url}/orders${query}`)
  return answer.status === 200 ? (JSON.parse(answer.body) as Page) : answer.status
}
/** The first id of the page each cursor leads to, each on a new connection (either worker). */
const secondPages = (firsts: Page[]) => Promise.all(firsts.map(async (first) => {
  const second = await page(`?cursor=${encodeURIComponent(first.next)}`)
  return typeof second === 'number' ? second : second.rows[0]!.id
}))

it('a cursor from before a reload, and before a worker\'s replacement, pages on every worker; a hash mask keeps its value', async () => {
  const firsts = (await Promise.all(Array.from({ length: 6 }, () => page()))) as Page[]
  await writeFile(file, stringify(config(Number(new URL(gateway.url).port), [{ id: 'ids', methods: ['GET'], path: '/ids', public: true, dataset: { source: 'shop', sql: 'SELECT id FROM orders ORDER BY id', page_size: 2 } }])))
  const reload = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  expect(reload.statusCode, await reload.body.text()).toBe(200)
  // Every worker runs the reloaded config: its new route answers on any connection.
  expect((await Promise.all(Array.from({ length: 4 }, () => onNewConnection(`${gateway.url}/ids`)))).map((r) => r.status)).toEqual(Array(4).fill(200))
  const afterReload = await secondPages(firsts)

  await crashWorker(gateway.stderr, 'w2')
  await waitFor(async () => (await metricValue(gateway.adminUrl, 'bouncer_worker_restarts_total')) === 1, 'the replacement counted', 30_000)
  await waitFor(async () => (await (await fetch(`${gateway.adminUrl}/metrics`)).text()).includes('bouncer_workers{state="running"} 2'), 'both workers running again', 30_000)
  const afterReplacement = await secondPages(firsts)
  const hashes = new Set([...firsts, ...((await Promise.all(Array.from({ length: 8 }, () => page()))) as Page[])].map((p) => p.rows[0]!.email))

  expect({ afterReload, afterReplacement, hashes: hashes.size }).toEqual({ afterReload: Array(6).fill(3), afterReplacement: Array(6).fill(3), hashes: 1 })
}, 90_000)
