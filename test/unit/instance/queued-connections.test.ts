// A stopping worker's queued connections are reset unless the kernel migrates them
// (net.ipv4.tcp_migrate_req): what the start-up warning says for each reading of the setting.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queuedConnectionsWarning } from '../../../src/instance/workers/queued-connections.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-migrate-req-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function setting(value: string): Promise<string> {
  const file = join(dir, `tcp_migrate_req-${value.trim() || 'empty'}`)
  await writeFile(file, value)
  return file
}

describe('the start-up warning about connections queued on a stopping worker', () => {
  it('0: says they are reset and how to set it to 1', async () => {
    expect(queuedConnectionsWarning(await setting('0\n'), 'linux')).toBe(
      'net.ipv4.tcp_migrate_req is 0: the connections queued on a worker that stops (replaced after a crash or a stall) are reset rather than handed to another worker; set it to 1 (sysctl -w net.ipv4.tcp_migrate_req=1, or docker run --sysctl net.ipv4.tcp_migrate_req=1)',
    )
  })

  it('1: nothing to say', async () => {
    expect(queuedConnectionsWarning(await setting('1\n'), 'linux')).toBeNull()
  })

  it('a kernel without the setting (before Linux 5.14): says it cannot hand them on', () => {
    expect(queuedConnectionsWarning(join(dir, 'absent'), 'linux')).toMatch(/^this kernel cannot hand the connections queued on a worker that stops .* \(net\.ipv4\.tcp_migrate_req, Linux 5\.14\): the kernel resets them/)
  })

  it('not Linux: no such setting, nothing to say', async () => {
    expect(queuedConnectionsWarning(await setting('0\n'), 'freebsd')).toBeNull()
  })
})
