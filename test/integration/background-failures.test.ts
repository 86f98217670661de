// No background failure ends the process: each task the gateway runs on its own gets a real fault
// that is not a config error, and the test shows the failure logged (with its stack), counted in
// bouncer_background_failures_total{task}, and the gateway still answering.
//
// The faults are real: a secrets store that is not a database, a directory where a secret file
// was, a store whose triggers refuse new versions, JWKS endpoints that answer garbage or hang up,
// an audit worker thread that crashes (an exception thrown inside it through the inspector
// protocol, the way a bug in a sink would), and, for the process-level policy of `bouncer serve`,
// a preloaded module that rejects a promise or throws from a callback on SIGUSR2.
// runtime_retirement is the one task no fault reaches (upstream pools close with allSettled); the
// helper's unit test covers what happens when a task throws.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { once } from 'node:events'
import { connect, Socket } from 'node:net'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/secrets/embedded.ts'
import { newSigningKey } from '../../src/secrets/index.ts'
import { ASSERTION_KEY } from '../../src/upstream/index.ts'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { evaluateInWorker } from '../helpers/inspector.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, metricValue, waitFor, waitForMetric, waitForText } from '../helpers/wait.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'

const ADMIN_TOKEN = 'background-admin-token-0123456789'
const MASTER_KEY = randomBytes(32).toString('base64')
const FAULT_MODULE = pathToFileURL(fileURLToPath(new URL('./fixtures/fault-on-sigusr2.ts', import.meta.url))).href

let dir: string
let upstream: TestUpstream
/** The request to /hello/held waits at the upstream until the test releases it. */
let held = { arrived: deferred(), release: deferred() }
const closeLater = closeAfterEach()

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-background-'))
  upstream = await startUpstream(async (req, res) => {
    if (req.url?.endsWith('/held')) {
      held.arrived.resolve()
      await held.release.promise
    }
    res.end(`hello from ${req.url} with ${req.headers.authorization ?? 'no credential'}`)
  })
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

const failures = (task: string) => `bouncer_background_failures_total{task="${task}"}`

async function get(url: string): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const res = await request(url)
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers }
}

interface LogLine {
  level: string
  msg: string
  task?: string
  err?: { message: string; stack: string }
  [field: string]: unknown
}

/** The JSON log lines (of a TestGateway, or of a child's stderr) whose message is `msg`. */
function logLines(text: string | string[], msg: string): LogLine[] {
  const lines = (Array.isArray(text) ? text.join('') : text).split('\n').filter((l) => l.startsWith('{'))
  return lines.map((l) => JSON.parse(l) as LogLine).filter((l) => l.msg === msg)
}

/** A gateway under audit.durability: sync with one upstream and one route, and its SQLite log's path; closed after the test. */
async function syncGateway(upstreamConfig: Record<string, unknown>, route: Record<string, unknown>): Promise<{ gw: TestGateway; db: string }> {
  const auditDir = await mkdtemp(join(dir, 'audit-'))
  const db = join(auditDir, 'audit.db')
  const gw = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(auditDir, 'spill'), durability: 'sync' },
    upstreams: [upstreamConfig],
    routes: [route],
  })
  closeLater(() => gw.close())
  return { gw, db }
}

/**
 * The audit worker's own message handler goes; this one ends the thread (exit code 3) on the next
 * batch, before it is written, as a crash or the heap limit would.
 */
async function endAuditWorkerOnNextBatch(gw: TestGateway): Promise<void> {
  await waitFor(() => gw.state.audit.head() !== null, 'the audit worker ready (its message handler in place)')
  const session = new Session()
  session.connect()
  try {
    const armed = "const port = process.getBuiltinModule('node:worker_threads').parentPort; port.removeAllListeners('message'); port.on('message', (m) => { if (m.type === 'batch') process.exit(3) }); 'armed'"
    await evaluateInWorker(session, '/audit/worker', armed)
  } finally {
    session.disconnect()
  }
}

describe('bouncer serve', () => {
  const serveConfig = (extra: Record<string, unknown> = {}) => ({
    server: { listen: '127.0.0.1:0', shutdown_timeout: '5s' },
    admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
    audit: { sinks: [] },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
    ...extra,
  })

  async function serve(name: string, config: object, env: NodeJS.ProcessEnv = {}): Promise<{ gw: ServeProcess; file: string }> {
    const file = join(dir, `${name}.yaml`)
    await writeFile(file, stringify(config))
    const gw = await startServe(['--config', file], { env: { BOUNCER_MASTER_KEY: MASTER_KEY, ...env } })
    closeLater(() => gw.stop('SIGKILL'))
    return { gw, file }
  }

  const withFault = (fault: 'reject' | 'throw') => ({ NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${FAULT_MODULE}`, BOUNCER_TEST_FAULT: fault })

  it('SIGHUP: a reload that fails with an error that is not a config error is logged and counted, and the old config keeps serving', async () => {
    const { gw, file } = await serve('reload', serveConfig())
    expect(await metricValue(gw.adminUrl, failures('reload'))).toBe(0)
    // A secrets store that refuses to store the assertion key the new config needs: SQLite's own
    // error, not a diagnostic of the config. (A file that is not a database was the fault here; it
    // is a config error naming the file now.)
    const frozen = join(dir, 'frozen-for-reload.db')
    openEmbeddedStore(frozen, Buffer.from(MASTER_KEY, 'base64')).close()
    const db = new DatabaseSync(frozen)
    db.exec("CREATE TRIGGER frozen BEFORE INSERT ON secret_versions BEGIN SELECT RAISE(ABORT, 'the store is frozen for maintenance'); END")
    db.close()
    await writeFile(file, stringify(serveConfig({
      secrets: { store: { type: 'embedded', path: frozen, master_key: 'env:BOUNCER_MASTER_KEY' } },
      upstreams: [{ name: 'api', url: upstream.url, identity_assertion: true }],
    })))
    gw.child.kill('SIGHUP')

    await waitForText(gw.stderr, 'background task reload failed')
    const [failure] = logLines(gw.stderr(), 'background task reload failed: the running config keeps serving')
    expect(failure).toMatchObject({ level: 'error', task: 'reload', err: { message: `the file ${frozen} (secrets.store.path) cannot be used: the store is frozen for maintenance` } })
    expect(failure?.err?.stack).toMatch(/\n\s+at /)
    expect(gw.stderr()).not.toContain('config reload refused')
    expect(await metricValue(gw.adminUrl, failures('reload'))).toBe(1)
    expect(await get(`${gw.url}/hello/after`)).toMatchObject({ status: 200, text: 'hello from /hello/after with no credential' })
    expect(gw.child.exitCode).toBeNull()
  })

  it('an unhandled rejection is logged with its stack and counted, and the gateway keeps serving', async () => {
    const { gw } = await serve('rejection', serveConfig(), withFault('reject'))
    expect(await metricValue(gw.adminUrl, failures('unhandled_rejection'))).toBe(0)
    gw.child.kill('SIGUSR2')

    const message = 'a promise rejected and nothing handled it: the gateway keeps serving'
    await waitForText(gw.stderr, message)
    const [failure] = logLines(gw.stderr(), message)
    expect(failure).toMatchObject({ level: 'error', task: 'unhandled_rejection' })
    expect(failure?.err?.stack).toMatch(/^Error: injected: a promise nobody handles\n\s+at .*fault-on-sigusr2\.ts/)
    expect(await metricValue(gw.adminUrl, failures('unhandled_rejection'))).toBe(1)
    expect((await get(`${gw.url}/hello/still`)).status).toBe(200)
    expect(gw.child.exitCode).toBeNull()
  })

  it('an uncaught exception is logged with its stack and counted; requests in flight finish, then the process exits 1', async () => {
    held = { arrived: deferred(), release: deferred() }
    const { gw } = await serve('exception', serveConfig(), withFault('throw'))
    const inFlight = get(`${gw.url}/hello/held`)
    await held.arrived.promise
    gw.child.kill('SIGUSR2')

    await waitForText(gw.stderr, '"msg":"draining"')
    const [failure] = logLines(gw.stderr(), 'an uncaught exception: draining, then exiting 1')
    expect(failure).toMatchObject({ level: 'error', task: 'uncaught_exception' })
    expect(failure?.err?.stack).toMatch(/^Error: injected: a throw nothing catches\n\s+at .*fault-on-sigusr2\.ts/)
    expect(await metricValue(gw.adminUrl, failures('uncaught_exception'))).toBe(1) // the admin listener closes last
    held.release.resolve()

    const response = await inFlight
    expect(response).toMatchObject({ status: 200, text: 'hello from /hello/held with no credential' })
    expect(response.headers.connection).toBe('close')
    expect(await gw.exited).toBe(1)
  })
})

describe('tasks of a running gateway', () => {
  async function gateway(config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<TestGateway> {
    const gw = await startTestGateway(config, { env })
    closeLater(() => gw.close())
    return gw
  }

  it('secrets refresh: a secret file replaced by a directory is a failure that names the file; the last value stays in use', async () => {
    const secretsDir = await mkdtemp(join(dir, 'mounted-'))
    const secretFile = join(secretsDir, 'sales-token')
    await writeFile(secretFile, 'mounted-value-0123\n')
    const gw = await gateway({
      secrets: { store: { type: 'file', dir: secretsDir }, refresh_interval: '100ms' },
      upstreams: [{ name: 'sales', url: upstream.url, headers: { Authorization: 'Bearer ${secret:sales-token}' } }],
      routes: [{ id: 'sales', path: '/*', upstream: 'sales', public: true }],
    })
    expect((await get(`${gw.url}/before`)).text).toBe('hello from /before with Bearer mounted-value-0123')

    await rm(secretFile)
    await mkdir(secretFile) // a directory where the file was: no mock, the file system says EISDIR
    // (A refresh between the two steps may first report the file missing: that is a failure too.)
    const message = `cannot read secret file ${secretFile}: it is a directory, not a file (EISDIR)`
    const failure = () => logLines(gw.logs, 'a referenced secret could not be re-read: its last value stays in use').find((l) => l.err?.message === message)
    await waitFor(() => failure() !== undefined, 'the EISDIR failure')
    expect(failure()).toMatchObject({ level: 'error', task: 'secrets_refresh', secret_name: 'sales-token' })
    expect(await metricValue(gw.adminUrl, failures('secrets_refresh'))).toBeGreaterThanOrEqual(1)
    expect(await get(`${gw.url}/after`)).toMatchObject({ status: 200, text: 'hello from /after with Bearer mounted-value-0123' })
  })

  it('scheduled rotation and the assertion key rotation: a store that refuses new versions is a failure; the current values stay', async () => {
    const path = join(dir, 'frozen.db')
    const store = openEmbeddedStore(path, Buffer.from(MASTER_KEY, 'base64'))
    store.put('sales-token', 'value-that-stays-0123')
    store.put(ASSERTION_KEY, newSigningKey())
    store.close()
    const db = new DatabaseSync(path)
    db.exec("CREATE TRIGGER frozen BEFORE INSERT ON secret_versions BEGIN SELECT RAISE(ABORT, 'the store is frozen for maintenance'); END")
    db.close()
    const gw = await gateway({
      secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '100ms', rotation: { 'sales-token': { every: '1s' } } },
      assertion: { rotate_every: '1s' },
      upstreams: [{ name: 'sales', url: upstream.url, identity_assertion: true, headers: { Authorization: 'Bearer ${secret:sales-token}' } }],
      routes: [{ id: 'sales', path: '/*', upstream: 'sales', public: true }],
    }, { BOUNCER_MASTER_KEY: MASTER_KEY })

    await waitForMetric(gw.adminUrl, failures('secret_rotation'))
    await waitForMetric(gw.adminUrl, failures('assertion_key_rotation'))
    const [rotation] = logLines(gw.logs, 'secret rotation failed: the current value stays, retrying later')
    // The store's own words, with its file (the operator probe's storeFileError).
    const frozen = `the file ${path} (secrets.store.path) cannot be used: the store is frozen for maintenance`
    expect(rotation).toMatchObject({ level: 'error', task: 'secret_rotation', secret_name: 'sales-token', failures: 1, retry_in_ms: 1000, err: { message: frozen } })
    const [assertionKey] = logLines(gw.logs, 'background task assertion_key_rotation failed: the current signing key stays')
    expect(assertionKey).toMatchObject({ level: 'error', err: { message: frozen } })
    expect(await get(`${gw.url}/after`)).toMatchObject({ status: 200, text: 'hello from /after with Bearer value-that-stays-0123' })
  })

  it('issuer keys: a JWKS endpoint that answers garbage, one that hangs up and one that answers 503 are failures; the gateway serves and says why in /readyz', async () => {
    const garbage = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('<html>this is not a key set</html>')
    })
    const hangup = await startUpstream((req) => {
      req.socket.destroy()
    })
    const refusing = await startUpstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end('down for maintenance')
    })
    closeLater(() => garbage.close(), () => hangup.close(), () => refusing.close())
    const gw = await gateway({
      issuers: [
        { name: 'garbage', issuer: 'https://garbage.example', jwks_uri: `${garbage.url}/jwks`, audiences: [AUDIENCE] },
        { name: 'hangup', issuer: 'https://hangup.example', jwks_uri: `${hangup.url}/jwks`, audiences: [AUDIENCE] },
        { name: 'refusing', issuer: 'https://refusing.example', jwks_uri: `${refusing.url}/jwks`, audiences: [AUDIENCE] },
      ],
      ...allowAnyCaller(['garbage', 'hangup', 'refusing']),
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
    })

    await waitForMetric(gw.adminUrl, failures('issuer_keys'), 3)
    await waitFor(() => new Set(logLines(gw.logs, 'issuer keys unavailable: retrying').map((l) => l.issuer)).size === 3, 'a failure of each issuer')
    const failureOf = (issuer: string) => logLines(gw.logs, 'issuer keys unavailable: retrying').find((l) => l.issuer === issuer)
    expect(failureOf('garbage')).toMatchObject({
      level: 'error', task: 'issuer_keys', cached_keys: false, reason: 'the JWKS endpoint answered 200 with a body that is not JSON',
      err: { stack: expect.stringMatching(/\n\s+at /), cause: { type: 'SyntaxError' } },
    })
    expect(failureOf('hangup')).toMatchObject({ level: 'error', task: 'issuer_keys', cached_keys: false, reason: 'fetch failed (UND_ERR_SOCKET)', err: { cause: { code: 'UND_ERR_SOCKET' } } })
    expect((await get(`${gw.url}/hello/x`)).status).toBe(200)
    const readyz = JSON.parse((await get(`${gw.adminUrl}/readyz`)).text) as { checks: Record<string, string> }
    expect(readyz.checks['issuer:garbage']).toMatch(/^unavailable: /)
    expect(readyz.checks['issuer:hangup']).toMatch(/^unavailable: /)
    // The status, not jose's "Expected 200 OK from the JSON Web Key Set HTTP response" (which replaced it).
    expect(failureOf('refusing')).toMatchObject({ level: 'error', task: 'issuer_keys', reason: 'the JWKS endpoint answered HTTP 503' })
    expect(readyz.checks['issuer:refusing']).toBe('unavailable: the JWKS endpoint answered HTTP 503')
  })

  it('trace export: a collector that refuses the spans is a failure, logged once (no password of its URL) and again when it takes them', async () => {
    // Exports that failed were silent: no log line, no metric, and every span dropped.
    let refuse = true
    const collector = await startUpstream((_req, res) => {
      res.writeHead(refuse ? 401 : 200, { 'content-type': 'application/json' })
      res.end('{}')
    })
    closeLater(() => collector.close())
    const gw = await gateway({
      telemetry: { otlp_endpoint: collector.url.replace('http://', 'http://collector:collector-password@') },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
    })
    await get(`${gw.url}/hello/1`)
    await waitForMetric(gw.adminUrl, failures('trace_export'), 1)
    await get(`${gw.url}/hello/2`)
    await waitForMetric(gw.adminUrl, failures('trace_export'), 2)
    const failed = logLines(gw.logs, 'background task trace_export failed: the batch\'s spans are dropped; logged again only once exports work again and fail anew')
    expect(failed).toEqual([expect.objectContaining({ level: 'error', task: 'trace_export', endpoint: `${collector.url}/v1/traces`, err: expect.objectContaining({ message: 'Unauthorized' }) })])
    refuse = false
    await get(`${gw.url}/hello/3`)
    await waitFor(() => logLines(gw.logs, 'trace export works again').length === 1, 'the recovery line')
    expect(gw.logs.join('')).not.toContain('collector-password')
  })

  it('trace export: spans dropped because the collector hangs and the batch queue is full are counted', async () => {
    // The SDK dropped them with only a diag line: a tracing gap nobody could see or size.
    const release = deferred()
    const collector = await startUpstream(async (_req, res) => {
      await release.promise
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
    closeLater(async () => {
      release.resolve()
      await collector.close()
    })
    const gw = await gateway({
      telemetry: { otlp_endpoint: collector.url },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
    })
    const dropped = 'bouncer_trace_spans_dropped_total'
    expect(await metricValue(gw.adminUrl, dropped)).toBe(0)
    // Two spans a request (the server span, the upstream's): 3,000 against a queue of 2,048, of which
    // at most a batch (512) or two went to the hanging export.
    for (let i = 0; i < 1_500; i++) expect((await get(`${gw.url}/hello/${i}`)).status).toBe(200)
    const count = await metricValue(gw.adminUrl, dropped)
    // Some were dropped, and counted: the lower bound below is under 0 (a count that stayed 0 passed it).
    expect(count).toBeGreaterThan(0)
    expect(count).toBeGreaterThanOrEqual(3_000 - 2_048 - 2 * 512)
    expect(count).toBeLessThanOrEqual(3_000 - 2_048)
  }, 60_000)

  it('audit worker: a worker thread that crashes is counted and replaced, and records keep reaching the sink', async () => {
    const auditDir = await mkdtemp(join(dir, 'audit-'))
    const gw = await gateway({
      admin: { token: ADMIN_TOKEN },
      audit: { sinks: [{ type: 'sqlite', path: join(auditDir, 'audit.db') }], spill_dir: join(auditDir, 'spill') },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
    })
    const audited = async (path: string) => {
      const res = await request(`${gw.adminUrl}/api/audit`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      return (await res.body.text()).includes(`"${path}"`)
    }
    expect((await get(`${gw.url}/hello/before`)).status).toBe(200)
    await waitFor(() => audited('/hello/before'), 'the first record in the sink')

    const session = new Session()
    session.connect()
    try {
      await crashWorker(session, '/audit/worker', 'injected: a bug in the audit worker')
      expect(await waitForMetric(gw.adminUrl, failures('audit_worker'))).toBe(1)
    } finally {
      session.disconnect()
    }
    expect(logLines(gw.logs, 'the audit worker failed')[0]?.err).toMatchObject({ message: 'injected: a bug in the audit worker' })
    expect(logLines(gw.logs, 'the audit worker stopped: restarting it')[0]).toMatchObject({ level: 'error', task: 'audit_worker', err: { message: 'the audit worker exited with code 1' } })

    expect((await get(`${gw.url}/hello/after-the-crash`)).status).toBe(200)
    await waitFor(() => audited('/hello/after-the-crash'), 'a record written by the new worker')
  })
  it('audit worker: one that dies at shutdown before its final drain answers does not hold the shutdown; what it held is counted as lost', async () => {
    const auditDir = await mkdtemp(join(dir, 'audit-'))
    const gw = await startTestGateway({
      admin: { token: ADMIN_TOKEN },
      // Records stay queued on the request thread until the shutdown flushes them.
      audit: { sinks: [{ type: 'sqlite', path: join(auditDir, 'audit.db') }], spill_dir: join(auditDir, 'spill'), flush_interval: '10m' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
    })
    const shutdown: { closing?: Promise<void> } = {}
    closeLater(() => shutdown.closing ?? gw.close())
    // It ends on the batch the shutdown sends, before the drain can answer.
    await endAuditWorkerOnNextBatch(gw)
    expect((await get(`${gw.url}/hello/queued-at-shutdown`)).status).toBe(200)
    shutdown.closing = gw.close()
    const outcome = await Promise.race([shutdown.closing.then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 10_000, 'still waiting after 10 s'))])
    expect(outcome).toBe('closed')
    const stopped = logLines(gw.logs, 'the audit worker stopped during the final drain: its uncommitted records are lost')
    expect(stopped).toEqual([expect.objectContaining({ level: 'error', code: 3, lost: 1 })])
    expect(gw.state.audit.stats().dropped).toBe(1)
  })
  it('audit worker, durability: sync: one that dies with a request\'s record answers 503 audit_unavailable, not the upstream\'s 200, and records the 503', async () => {
    const { gw, db } = await syncGateway({ name: 'api', url: upstream.url }, { id: 'hello', path: '/hello/*', upstream: 'api', public: true })
    await endAuditWorkerOnNextBatch(gw) // the request's record
    const lost = await get(`${gw.url}/hello/record-lost`)
    expect(lost.status).toBe(503)
    expect(JSON.parse(lost.text)).toMatchObject({ code: 'audit_unavailable', detail: expect.stringContaining('durability: sync') })
    expect(lost.text).not.toContain('hello from')
    expect(lost.headers['retry-after']).toBe('1')
    // The replacement worker stores the next: the gateway serves again.
    const after = await get(`${gw.url}/hello/after`)
    expect(after.status).toBe(200)
    await gw.close()
    const rows = new DatabaseSync(db, { readOnly: true })
    try {
      const stored = rows.prepare("SELECT path, status, code FROM audit_records WHERE path LIKE '/hello/%' ORDER BY chain, seq").all()
      expect(stored).toEqual([{ path: '/hello/record-lost', status: 503, code: 'audit_unavailable' }, { path: '/hello/after', status: 200, code: null }])
    } finally {
      rows.close()
    }
  })
  it('audit worker, durability: sync: one that dies with the record of a WebSocket handshake the upstream refused answers 503 audit_unavailable, not a connection held open', async () => {
    // The upstream refuses the handshake (403 "no"); the refusal's last bytes wait for its record,
    // which the audit worker takes with it. The rejected commit went unhandled (an unhandled
    // rejection counted), and the client's connection was held open with the 403 half sent.
    const refusing = await startUpstream((_req, res) => {
      res.writeHead(403, { 'content-length': 2 })
      res.end('no')
    })
    closeLater(() => refusing.close())
    const { gw, db } = await syncGateway({ name: 'ws', url: refusing.url }, { id: 'ws', path: '/ws/*', upstream: 'ws', public: true, websocket: true })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    closeLater(() => process.off('unhandledRejection', onUnhandled))
    await endAuditWorkerOnNextBatch(gw) // the refusal's record
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
    closeLater(() => socket.destroy())
    let answer = ''
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
    socket.write('GET /ws/refused HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-record-lost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    const ended = await Promise.race([once(socket, 'close').then(() => 'closed'), new Promise((resolve) => setTimeout(resolve, 5_000, 'still open after 5 s'))])
    expect(ended).toBe('closed')
    expect(answer).toMatch(/^HTTP\/1\.1 503 /)
    expect(answer).toContain('"code":"audit_unavailable"')
    expect(answer).not.toMatch(/\r\n\r\nno$/)
    expect(unhandled).toEqual([])
    await gw.close()
    const rows = new DatabaseSync(db, { readOnly: true })
    try {
      const stored = rows.prepare("SELECT request_id, status, upstream_status, decision, code FROM audit_records WHERE path LIKE '/ws/%'").all()
      expect(stored).toEqual([{ request_id: 'ws-record-lost', status: 503, upstream_status: 403, decision: 'error', code: 'audit_unavailable' }])
    } finally {
      rows.close()
    }
  })
  it('audit worker, durability: sync: a malformed request followed by more bytes while its record is committed is refused and recorded once', async () => {
    // Node's parser stays in error and says so again for each later chunk of the connection: while
    // the first refusal's answer waited for its commit, each made a record, a count and an answer of
    // its own (a review: one malformed request, two records).
    const { gw, db } = await syncGateway({ name: 'api', url: upstream.url }, { id: 'hello', path: '/hello/*', upstream: 'api', public: true })
    await waitFor(() => gw.state.audit.head() !== null, 'the audit worker ready (its message handler in place)')
    // The audit worker is kept busy (its thread blocked) until the test lets it go: the refusal's
    // commit is pending meanwhile.
    const blocked = join(dirname(db), 'blocked')
    const release = join(dirname(db), 'release')
    const session = new Session()
    session.connect()
    const unblocked = evaluateInWorker(session, '/audit/worker', `(() => { const fs = process.getBuiltinModule('node:fs'); fs.writeFileSync(${JSON.stringify(blocked)}, ''); const until = Date.now() + 20000; while (!fs.existsSync(${JSON.stringify(release)}) && Date.now() < until); return 1 })()`).finally(() => session.disconnect())
    closeLater(() => writeFile(release, '').then(() => unblocked))
    await waitFor(() => existsSync(blocked), 'the audit worker blocked')
    const port = Number(new URL(gw.url).port)
    // No Nagle: the later bytes go at once, not when the first segment's (delayed) ACK comes.
    const socket = connect({ port, host: '127.0.0.1', noDelay: true })
    closeLater(() => socket.destroy())
    let answer = ''
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
    socket.on('error', () => {})
    const malformed = 'GET /hello/bad HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'
    socket.write(malformed)
    const refused = 'bouncer_requests_total{route="(none)",status="400",decision="deny"}'
    await waitFor(async () => (await metricValue(gw.adminUrl, refused)) === 1, 'the refusal, its commit pending')
    // The gateway's end of the connection (in this process): once it has read the later bytes, its
    // parser has said what it says of them (it runs in the read).
    const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles()
    const gatewaySide = handles.find((h): h is Socket => h instanceof Socket && h.localPort === port && h.remotePort === socket.localPort)
    if (gatewaySide === undefined) throw new Error('the gateway\'s end of the connection was not found')
    const more = 'more bytes\r\n'
    socket.write(more)
    await waitFor(() => gatewaySide.bytesRead >= malformed.length + more.length, 'the later bytes read by the gateway')
    expect(answer).toBe('') // still waiting for its commit
    expect(await metricValue(gw.adminUrl, refused)).toBe(1)
    await writeFile(release, '')
    await unblocked
    await waitFor(() => answer.endsWith('}'), 'the answer, once committed')
    expect(answer.match(/HTTP\/1\.1 400 /g)).toHaveLength(1)
    const requestId = (JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { request_id: string }).request_id
    await gw.close()
    const rows = new DatabaseSync(db, { readOnly: true })
    try {
      expect(rows.prepare('SELECT request_id FROM audit_records WHERE status = 400').all()).toEqual([{ request_id: requestId }])
    } finally {
      rows.close()
    }
  })
  it('audit worker: one that cannot start (its directory is a file) is retried with a growing delay, not in a loop, and writes again once it can', async () => {
    // The audit directory's name is a symbolic link to itself (ELOOP): the worker can open neither
    // its sink nor its spill. (A file in its place no longer starts: `check` refuses the spill_dir.)
    const auditDir = join(dir, 'audit-is-a-loop')
    await symlink(auditDir, auditDir)
    const gw = await gateway({
      admin: { token: ADMIN_TOKEN },
      audit: { sinks: [{ type: 'sqlite', path: join(auditDir, 'audit.db') }], spill_dir: join(auditDir, 'spill') },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
    })
    await waitForMetric(gw.adminUrl, failures('audit_worker'), 2) // two starts that failed
    const started = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 2_000)) // the span over which restarts are counted
    const failed = await metricValue(gw.adminUrl, failures('audit_worker'))
    // 100 ms, 200, 400, 800…: a handful in two seconds (without the delay: 15, a new thread each, a core kept busy).
    expect(failed, `restarts in ${Date.now() - started} ms`).toBeLessThanOrEqual(8)
    expect((await get(`${gw.url}/hello/while-down`)).status).toBe(200) // the gateway answers throughout

    await rm(auditDir, { force: true })
    // A worker restarting in between makes the directory itself (openSqlite's mkdir): either way it is back.
    await mkdir(auditDir, { recursive: true })
    expect((await get(`${gw.url}/hello/once-back`)).status).toBe(200)
    await waitFor(async () => {
      expect((await get(`${gw.url}/hello/once-back`)).status).toBe(200)
      const res = await request(`${gw.adminUrl}/api/audit`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      return res.statusCode === 200 && (await res.body.text()).includes('"/hello/once-back"')
    }, 'a record written once the directory is back', 40_000)
  })
})

/**
 * Throws an exception nothing catches inside the worker thread whose script URL contains `urlPart`,
 * through the inspector's NodeWorker domain: the worker dies as it would of a bug in its own code.
 */
async function crashWorker(session: Session, urlPart: string, message: string): Promise<void> {
  await evaluateInWorker(session, urlPart, `setImmediate(() => { throw new Error(${JSON.stringify(message)}) })`)
}
