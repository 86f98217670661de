// An unexpected exception inside the pipeline: 500 internal_error with the request id, a logged
// stack, and a process that keeps serving. The fault is injected by giving the real listener a
// router that throws, since no valid config makes our own code throw.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { loadConfigText } from '../../src/config/index.ts'
import { compileRuntime, createRuntimeDeps } from '../../src/gateway/compile.ts'
import { createGatewayServer } from '../../src/gateway/server.ts'
import type { GatewayState } from '../../src/gateway/state.ts'
import { createTunnelRegistry } from '../../src/gateway/tunnels.ts'
import { createAuditLog } from '../../src/audit/log.ts'
import { createBackgroundTasks } from '../../src/telemetry/background.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { createMetrics } from '../../src/telemetry/metrics.ts'

describe('unexpected exceptions', () => {
  it('become 500 internal_error with the request id and a logged stack, and the gateway keeps serving', async () => {
    const loaded = loadConfigText('audit: { sinks: [] }\nupstreams: [{ name: a, url: "http://127.0.0.1:9" }]\nroutes: [{ id: a, path: /a, upstream: a, public: true }]\n', 'x.yaml')
    const deps = createRuntimeDeps(createLogger({ level: 'silent' }), { offline: true })
    const runtime = compileRuntime(loaded.config!, deps)
    let calls = 0
    const faulty = {
      ...runtime,
      router: {
        size: 1,
        match() {
          calls++
          throw new TypeError('boom: a bug in the router')
        },
      },
    }
    const logs: string[] = []
    const state: GatewayState = {
      runtime: faulty,
      logger: createLogger({ destination: new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }) }),
      audit: createAuditLog(loaded.config!.audit, createLogger({ level: 'silent' }), createBackgroundTasks(createLogger({ level: 'silent' }), { backgroundFailed() {} })),
      metrics: createMetrics({ audit: () => ({ queueDepth: 0, sinks: {}, written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0, spillBytes: 0 }), inFlight: () => 0 }),
      tracing: null,
      draining: false,
      inFlight: 0,
      tunnels: new Set(),
      openTunnels: createTunnelRegistry(() => faulty, createLogger({ level: 'silent' })),
    }
    const { server } = createGatewayServer(state)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

    for (let i = 0; i < 2; i++) {
      const res = await request(`${url}/a`, { headers: { 'x-request-id': `req-${i}` } })
      const body = (await res.body.json()) as Record<string, unknown>
      expect(res.statusCode).toBe(500)
      expect(body).toMatchObject({ code: 'internal_error', status: 500, request_id: `req-${i}` })
      expect(String(body.detail)).not.toContain('boom') // the bug's message stays in the log
    }
    expect(calls).toBe(2)
    const entry = JSON.parse(logs.find((l) => l.includes('request failed unexpectedly')) ?? '{}') as { err?: { stack?: string }; request_id?: string }
    expect(entry.request_id).toBe('req-0')
    expect(entry.err?.stack).toContain('TypeError: boom: a bug in the router')
    server.close()
    await deps.closeAll()
  })
})
