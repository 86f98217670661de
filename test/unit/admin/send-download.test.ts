// An admin download (the console's audit export: up to 100,000 records, read whole) written to a
// client that stops reading and goes. Waiting for 'drain' alone waited for ever then, and held the
// download's lines for the life of the process; now the download ends when the client goes.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { afterEach, expect, it } from 'vitest'
import { sendDownload } from '../../../src/admin/server.ts'
import { waitFor } from '../../helpers/wait.ts'

let server: Server | undefined

afterEach(async () => {
  server?.closeAllConnections()
  server?.close()
  if (server) await once(server, 'close')
  server = undefined
})

it('ends a download whose client stopped reading and went, and lets its lines go', async () => {
  const LINES = 100_000 // 100 MB: far more than the sockets' buffers hold
  let made = 0
  let released = false
  async function* lines(): AsyncGenerator<string> {
    try {
      for (; made < LINES; made++) yield `${'x'.repeat(1023)}\n`
    } finally {
      released = true
    }
  }
  let sent: Promise<void> | undefined
  server = createServer((_req, res) => {
    sent = sendDownload(res, { type: 'text/plain', filename: 'big.txt', lines: lines() })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  client.write('GET /download HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(client, 'data') // the head and some lines; then it reads no more
  client.pause()
  await waitFor(() => made > 0 && sent !== undefined, 'the download under way')
  client.destroy()

  let ended = false
  void sent?.then(() => (ended = true))
  await waitFor(() => ended && released, 'the download ended and its lines let go', 5_000)
  expect(made).toBeLessThan(LINES) // held back by the client, not written whole into memory
})
