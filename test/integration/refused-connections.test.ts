// Found by a probe: connections refused at max_connections were logged as "refused": 1 for a flood
// shorter than 10 s (later drops were reported only with a drop 10 s later), and counted nowhere.
// They are now counted (bouncer_connections_refused_total), and the drops that follow the first
// log line are logged together when the interval ends.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

let gateway: TestGateway
const sockets: Socket[] = []

beforeAll(async () => {
  gateway = await startTestGateway({
    server: { max_connections: 2 },
    admin: { listen: '127.0.0.1:0', token: 'refused-connections-admin-token-01' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await gateway?.close()
})

async function open(): Promise<Socket> {
  const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  socket.on('error', () => {})
  sockets.push(socket)
  await once(socket, 'connect')
  return socket
}

it('counts each connection refused at max_connections, and logs the first at once', async () => {
  await open()
  await open()
  for (let i = 0; i < 5; i++) {
    const refused = await open()
    await once(refused, 'close') // Node closes it as it accepts it
  }
  await waitFor(async () => (await metricValue(gateway.adminUrl, 'bouncer_connections_refused_total')) === 5, 'five refusals counted')
  const lines = gateway.logs.join('').split('\n').filter((line) => line.includes('connection limit reached'))
  expect(lines.map((line) => (JSON.parse(line) as { refused: number }).refused)).toEqual([1])
  // The other four at the 10 s interval's end, with nothing more refused meanwhile (was: never).
  const refusedLogged = () => gateway.logs.join('').split('\n').filter((line) => line.includes('connection limit reached')).map((line) => (JSON.parse(line) as { refused: number }).refused)
  await waitFor(() => refusedLogged().length === 2, 'the rest of the refusals to be logged', 15_000)
  expect(refusedLogged()).toEqual([1, 4])
}, 30_000)
