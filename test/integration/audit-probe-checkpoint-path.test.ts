// Found by the audit probe: `bouncer audit verify` where the checkpoint file cannot be read — a
// directory in its place, or a file this user may not read — ended "bouncer: internal error: cannot
// read the checkpoint file …", the gateway's bug by its words, where the file's state is the
// operator's to see to. It is one line naming the file and why, exit 1.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'

let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-checkpoint-path-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('names a checkpoint path that is a directory, not an internal error', async () => {
  const log = join(dir, 'audit.db')
  const gw = await startTestGateway({ audit: { sinks: [{ type: 'sqlite', path: log }], spill_dir: join(dir, 'spill') }, routes: [] })
  try {
    const res = await fetch(`${gw.url}/nowhere`)
    await res.arrayBuffer()
    await waitForAuditRecord(log, String(res.headers.get('x-request-id')))
  } finally {
    await gw.close()
  }
  // Where the gateway keeps it when audit.checkpoint_path is not set: beside the log (a path set
  // in the config that names a directory is refused when the config is read).
  const checkpoints = `${log}.checkpoints`
  await rm(checkpoints)
  await mkdir(checkpoints)
  const config = join(dir, 'bouncer.yaml')
  await writeFile(config, stringify({ audit: { sinks: [{ type: 'sqlite', path: log }] } }))
  expect(await runCliInProcess(['audit', 'verify', '--config', config])).toEqual({
    code: 1,
    stdout: '',
    stderr: `bouncer: cannot read the checkpoint file ${checkpoints}: it is a directory, not a file (EISDIR)\n`,
  })
}, 60_000)
