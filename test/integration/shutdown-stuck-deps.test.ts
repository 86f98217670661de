// Found by an adversarial probe: SIGTERM's close steps after the drain (the registries' pools and
// stores, the audit log, the tracing's last export) were not bounded by server.shutdown_timeout. A
// dependency that accepts and never answers held the exit, and the audit log, closed after the
// registries, could be closed too late or never:
// - an OTLP collector that never answers: the exit waited for the exporter's 10 s timeout, and
//   then exited 1 ("shutdown failed") on a plain SIGTERM;
// (Probed too, and already fine: a dataset query blocked by a lock another session holds, and a
// Redis limits store that stopped answering: the exit came at shutdown_timeout, each record written.)
import { once } from 'node:events'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
})

afterAll(async () => {
  await upstream?.close()
})

const server = { listen: '127.0.0.1:0', shutdown_timeout: '1s' }

function sqliteAudit(dir: string) {
  return { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') }
}

function auditRecord(dir: string, requestId: string): unknown {
  const db = new DatabaseSync(join(dir, 'audit.db'), { readOnly: true })
  try {
    return db.prepare('SELECT status, detail FROM audit_records WHERE request_id = ?').get(requestId) ?? null
  } finally {
    db.close()
  }
}

/** SIGTERM, then the exit: its code, and how long it took (SIGKILL at 30 s: a process that never ends). */
async function terminate(gateway: ServeProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const sent = Date.now()
  gateway.child.kill('SIGTERM')
  const kill = setTimeout(() => gateway.child.kill('SIGKILL'), 30_000)
  const code = await gateway.exited
  clearTimeout(kill)
  return { code, signal: gateway.child.signalCode, ms: Date.now() - sent }
}

async function hit(url: string, requestId: string): Promise<number> {
  const res = await request(url, { headers: { 'x-request-id': requestId } })
  await res.body.dump()
  return res.statusCode
}

it('an OTLP collector that never answers: SIGTERM exits 0 soon after shutdown_timeout, every record written', async () => {
  const sockets = new Set<Socket>()
  const collector = createServer((socket) => {
    sockets.add(socket) // accepted, never answered
    socket.on('error', () => {})
  })
  collector.listen(0, '127.0.0.1')
  await once(collector, 'listening')
  const gateway = await serveConfig((dir) => ({
    server,
    audit: sqliteAudit(dir),
    telemetry: { otlp_endpoint: `http://127.0.0.1:${(collector.address() as AddressInfo).port}` },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true }],
  }))
  try {
    for (let i = 0; i < 3; i++) expect(await hit(`${gateway.url}/r`, `traced-${i}`)).toBe(200)
    const exit = await terminate(gateway)
    // Before: 10 s (the exporter's own timeout), then exit 1, "shutdown failed".
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null })
    expect(exit.ms).toBeLessThan(7_000)
    expect(gateway.stderr()).toContain('shutdown: exporting the last traces did not end within')
    expect(gateway.stderr()).not.toContain('shutdown failed')
    for (let i = 0; i < 3; i++) expect(auditRecord(gateway.dir, `traced-${i}`)).toMatchObject({ status: 200 })
  } finally {
    for (const socket of sockets) socket.destroy()
    collector.close()
    await gateway.stop('SIGKILL')
  }
}, 60_000)
