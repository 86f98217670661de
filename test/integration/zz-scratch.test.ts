import { afterAll, beforeAll, it } from 'vitest'
import { startTestGateway, publicCatchAll, type TestGateway } from '../helpers/gateway.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { rawRequest } from '../helpers/raw.ts'

let up: RawUpstream
let gw: TestGateway
const answers: Record<string, string> = {
  '/101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\nhello',
  '/199': 'HTTP/1.1 199 Odd\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/103cred': 'HTTP/1.1 103 Early Hints\r\nX-Cred: secret\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/http10': 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/http09': 'ok',
  '/204body': 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
}
beforeAll(async () => {
  up = await startRawUpstream((head, socket) => {
    const path = head.split(' ')[1] ?? ''
    socket.write(Buffer.from(answers[path] ?? 'HTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n', 'latin1'))
  })
  gw = await startTestGateway({ ...publicCatchAll(up.url), upstreams: [{ name: 'api', url: up.url, timeout: '2s' }] })
})
afterAll(async () => { await gw?.close(); await up?.close() })

it('probe', { timeout: 60000 }, async () => {
  const port = Number(new URL(gw.url).port)
  for (const path of Object.keys(answers)) {
    const t = Date.now()
    const res = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeout: 6000 })
    console.log(path, Date.now() - t, JSON.stringify(res.raw.slice(0, 300)), res.closed, res.timedOut)
  }
})
