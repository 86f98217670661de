// Found by the CLI probe (helper): `bouncer healthcheck --timeout 0s` (a HEALTHCHECK line written
// carelessly) was taken, and every check of a ready gateway failed: "not ready: …: no answer
// (TimeoutError)", exit 1, so the container was marked unhealthy for good. And a listener that
// accepted but never answered said only "no answer (TimeoutError)", not how long it was given.
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

it('refuses a --timeout of 0 as a usage error, before reading any config', async () => {
  for (const timeout of ['0s', '0ms']) {
    const result = await runCliInProcess(['healthcheck', '--timeout', timeout], { env: { BOUNCER_CONFIG: '/nonexistent/bouncer.yaml' } })
    expect(result).toMatchObject({ code: 2, stdout: '', stderr: 'bouncer: --timeout: must be more than 0 (e.g. 3s)\n' })
  }
})

it('says how long it waited for a listener that never answers', async () => {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => sockets.add(socket)).listen(0, '127.0.0.1') // accepts, never answers
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const dir = await mkdtemp(join(tmpdir(), 'acx2-healthcheck-'))
  try {
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, `admin:\n  listen: 127.0.0.1:${port}\n`)
    const result = await runCliInProcess(['healthcheck', '--config', file, '--timeout', '300ms'], { env: { BOUNCER_ADMIN_LISTEN: '' } })
    expect(result).toMatchObject({ code: 1, stdout: '', stderr: `bouncer: not ready: http://127.0.0.1:${port}/readyz: no answer within 300ms\n` })
  } finally {
    for (const socket of sockets) socket.destroy()
    server.close()
    await rm(dir, { recursive: true, force: true })
  }
})
