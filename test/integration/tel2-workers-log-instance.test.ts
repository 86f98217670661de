// With server.workers, the primary's own log lines (`worker listening`, `worker stopped: starting a
// replacement`, `config reload refused`, `draining`…) carried no `instance`: its logger was made
// apart from the workers', which name the instance (and the worker). The README says every line
// carries it: a log search by instance behind a load balancer missed exactly the lines about the
// workers' crashes and refused reloads.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { waitForText } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

let dir: string
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-tel2-instance-'))
  ;({ gateway } = await serveWithWorkers(dir, () => ({}), { env: { BOUNCER_INSTANCE: 'gw-9' } }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop()
  await rm(dir, { recursive: true, force: true })
})

it('every log line of a gateway with workers names the instance, the primary\'s too', async () => {
  await waitForText(gateway.stderr, '"worker listening"')
  const lines = gateway.stderr().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg: string; instance?: string })
  expect(lines.some((line) => line.msg === 'worker listening')).toBe(true)
  expect(lines.filter((line) => line.instance !== 'gw-9').map((line) => line.msg)).toEqual([])
})
