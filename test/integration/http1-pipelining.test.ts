// Found by an adversarial probe (helper): node:http emits every pipelined request it parses at
// once (it only holds their answers in order), so one HTTP/1.1 connection's pipelined requests all
// ran together: 20,000 GETs (580 KB) were 20,000 requests in flight (+190 MB), and 2,000 took the
// whole upstream pool, another client waiting 4 s. A connection's requests now run one at a time.
import { connect, type Socket } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: TestUpstream
let gateway: TestGateway
const held: Array<() => void> = []
let heldNow = 0

beforeAll(async () => {
  upstream = await startUpstream(async (req, res) => {
    if (req.url === '/held') {
      heldNow++
      await new Promise<void>((resolve) => held.push(resolve)) // answered when the test lets go
      heldNow--
    }
    res.end('ok')
  }, { readBody: false })
  gateway = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  })
})

afterAll(async () => {
  for (const release of held.splice(0)) release()
  await gateway?.close()
  await upstream?.close()
})

async function pipelining(count: number): Promise<{ socket: Socket; answers: () => number }> {
  const socket = connect({ host: '127.0.0.1', port: Number(new URL(gateway.url).port) })
  socket.on('error', () => {})
  let text = ''
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('GET /held HTTP/1.1\r\nHost: gw\r\n\r\n'.repeat(count))
  return { socket, answers: () => text.split('HTTP/1.1 200').length - 1 }
}

it('one connection pipelining 20,000 requests is closed (past 64 held: node:http parses a whole read at once), and other clients are served', async () => {
  const attacker = await pipelining(20_000)
  try {
    await waitFor(() => attacker.socket.destroyed || attacker.socket.readableEnded, 'the connection closed by the gateway')
    expect(heldNow).toBeLessThanOrEqual(1)
    const victim = await request(`${gateway.url}/victim`)
    expect(victim.statusCode).toBe(200)
    await victim.body.text()
  } finally {
    attacker.socket.destroy()
    for (const release of held.splice(0)) release()
  }
  await waitFor(() => gateway.state.inFlight === 0, 'the connection\'s requests ended', 10_000)
})

it('one connection pipelining 40 requests has one in flight, and other clients are served meanwhile', async () => {
  const attacker = await pipelining(40)
  try {
    await waitFor(() => heldNow === 1, 'the first pipelined request at the upstream')
    const victim = await request(`${gateway.url}/victim`)
    expect(victim.statusCode).toBe(200)
    await victim.body.text()
    // Before: every request parsed so far was in flight at once, the upstream's pool full.
    expect(heldNow).toBe(1)
    expect(gateway.state.inFlight).toBe(1)
    // Let three go: the next ones start, in order, one at a time.
    for (let i = 1; i <= 3; i++) {
      held.shift()?.()
      await waitFor(() => attacker.answers() === i && heldNow === 1, `answer ${i} and the next request started`)
    }
  } finally {
    attacker.socket.destroy()
    for (const release of held.splice(0)) release()
  }
  await waitFor(() => gateway.state.inFlight === 0, 'the connection\'s requests ended', 10_000)
}, 30_000)
