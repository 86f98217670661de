// Found by the audit probe: `bouncer audit` and `bouncer audit verify` on a PostgreSQL log whose
// server does not answer (a dropped route, a full backlog: pg's connect gives up after 5 s) or that
// goes away (the connection reset) ended "bouncer: internal error: timeout expired" or "internal
// error: read ECONNRESET": the gateway's bug by its words, naming no server. Both are the
// environment's to see to: one line naming the server (never its user or password), exit 1.
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startBlackhole, type Blackhole } from '../helpers/faults.ts'

let dir: string
let blackhole: Blackhole
/** A server that takes each connection and resets it at once. */
let resetting: Server

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-pg-gone-'))
  blackhole = await startBlackhole()
  resetting = createServer((socket) => socket.resetAndDestroy()).listen(0, '127.0.0.1')
  await once(resetting, 'listening')
})

afterAll(async () => {
  blackhole?.close()
  resetting?.close()
  await rm(dir, { recursive: true, force: true })
})

async function configFor(port: number): Promise<string> {
  const file = join(dir, `${port}.yaml`)
  const url = `postgres://auditor:s3cret-password@127.0.0.1:${port}/audit`
  await writeFile(file, stringify({ audit: { sinks: [{ type: 'postgres', url, schema: 'bouncer' }], spill_dir: join(dir, 'spill') } }))
  return file
}

it('names a server that does not answer, for a search', async () => {
  const file = await configFor(blackhole.port)
  expect(await runCliInProcess(['audit', '--config', file])).toEqual({
    code: 1,
    stdout: '',
    stderr: `bouncer: cannot read the audit log: timeout expired (PostgreSQL at 127.0.0.1:${blackhole.port}: not reachable, or it went away)\n`,
  })
}, 30_000)

it('names a server whose connection is reset, for verify and a search', async () => {
  const { port } = resetting.address() as AddressInfo
  const file = await configFor(port)
  for (const args of [['audit', 'verify'], ['audit']]) {
    const result = await runCliInProcess([...args, '--config', file])
    expect(result).toMatchObject({ code: 1, stdout: '' })
    // Reset at the connect or at the first read, as the timing falls.
    expect(result.stderr).toMatch(new RegExp(`^bouncer: cannot read the audit log: \\S+ ECONNRESET.* \\(PostgreSQL at 127\\.0\\.0\\.1:${port}: not reachable, or it went away\\)\\n$`))
    expect(result.stderr).not.toContain('s3cret')
  }
}, 30_000)
