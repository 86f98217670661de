// Issue 22.8: a subject or client id is whatever the token's minter chose. Printed raw, an ESC
// sequence erases the audit rows above it, CR overwrites a line, BEL rings, a C1 CSI (U+009B)
// acts as ESC [, and a bidi override (U+202E) or a zero-width space disguises one name as
// another. Every human-readable output shows them in their visible \uXXXX form; --json stays JSON.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

/** Erase the line, move up, carriage return, bell, C1 CSI, right-to-left override, zero-width space, DEL. */
const HOSTILE = 'svc\x1b[2K\x1b[1A\r\x07\u009b2J\u202Eexe.txt\u200B\x7f'
const VISIBLE = 'svc\\u001b[2K\\u001b[1A\\u000d\\u0007\\u009b2J\\u202eexe.txt\\u200b\\u007f'
/** Anything a terminal would act on or hide, other than the line breaks the output itself is made of. */
const RAW_CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u

function expectPrintable(output: string): void {
  for (const line of output.split('\n')) expect(line, JSON.stringify(line)).not.toMatch(RAW_CONTROL)
}

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-escapes-'))
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'data', path: '/data/*', upstream: 'api' }],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('bouncer audit', () => {
  it('shows a hostile subject in its visible form in the table, and exactly in --json', async () => {
    const token = await idp.mint({ sub: HOSTILE, azp: HOSTILE })
    const res = await request(`${gateway.url}/data/x`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'hostile-subject' } })
    expect(res.statusCode).toBe(200)
    await res.body.dump()
    await waitFor(async () => (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 10 }).catch(() => [])).some((r) => r.request_id === 'hostile-subject'), 'the audit record')

    const table = await runCliInProcess(['audit', '--config', gateway.file])
    expect(table.code, table.stderr).toBe(0)
    expectPrintable(table.stdout)
    expect(table.stdout).toContain(VISIBLE.slice(0, 60)) // the table cuts a column at 60 characters
    expect(table.stdout.trim().split('\n')).toHaveLength(2) // the header and this one row: nothing broke a line

    const json = await runCliInProcess(['audit', '--config', gateway.file, '--json'])
    const record = JSON.parse(json.stdout.trim().split('\n')[0] as string) as AuditRecord
    expect(record).toMatchObject({ subject: HOSTILE, client_id: HOSTILE })
  })
})

describe('bouncer explain', () => {
  it('shows hostile claims in their visible form in the text, and exactly in --json', async () => {
    const args = ['explain', '--config', gateway.file, '--method', 'GET', '--path', '/data/x', '--claims', JSON.stringify({ iss: idp.issuer, sub: HOSTILE, azp: HOSTILE })]
    const text = await runCliInProcess(args)
    expect(text.code, text.stderr).toBe(0)
    expectPrintable(text.stdout)
    expect(text.stdout).toContain(`subject ${VISIBLE}, client ${VISIBLE}`)

    const json = await runCliInProcess([...args, '--json'])
    expect((JSON.parse(json.stdout) as { identity: { sub: string; client_id: string } }).identity).toMatchObject({ sub: HOSTILE, client_id: HOSTILE })
  })
})

describe('bouncer secrets', () => {
  it('list shows a name from the environment in its visible form', async () => {
    const config = join(dir, 'env-store.yaml')
    await writeFile(config, stringify({ audit: { sinks: [] }, secrets: { store: { type: 'env', prefix: 'BOUNCER_SECRET_' } } }))
    const listed = await runCliInProcess(['secrets', 'list', '--config', config], { env: { [`BOUNCER_SECRET_${HOSTILE}`]: 'value' } })
    expect(listed.code, listed.stderr).toBe(0)
    expectPrintable(listed.stdout)
    expect(listed.stdout).toContain(VISIBLE.toLowerCase())
  })

  it('an error that echoes a name shows it in its visible form', async () => {
    const config = join(dir, 'env-store.yaml')
    const missing = await runCliInProcess(['secrets', 'versions', HOSTILE, '--config', config])
    expect(missing.code).toBe(1)
    expectPrintable(missing.stderr)
    expect(missing.stderr).toContain(`no secret ${VISIBLE}`)
  })
})

describe('bouncer check', () => {
  it('echoes a hostile config value in its visible form', async () => {
    const config = join(dir, 'hostile.yaml')
    await writeFile(config, stringify({
      audit: { sinks: [] },
      upstreams: [{ name: 'api', url: 'http://127.0.0.1:1' }],
      routes: [{ id: 'r', path: '/r', upstream: HOSTILE, public: true }],
    }))
    const checked = await runCliInProcess(['check', '--config', config])
    expect(checked.code).toBe(1)
    expectPrintable(checked.stderr)
    expect(checked.stderr).toContain(VISIBLE)
  })
})
