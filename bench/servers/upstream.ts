// The benchmark's upstream: node:http answering a fixed 1 KB JSON body, or 1 MB at /1mb.
import { createServer } from 'node:http'

const small = Buffer.from(JSON.stringify({ region: 'eu', rows: Array.from({ length: 24 }, (_, i) => ({ hour: i, orders: 1000 + i, revenue: 12345.67 + i })) }).slice(0, 1024))
const oneMb = Buffer.alloc(1024 * 1024, 0x61)

const server = createServer((req, res) => {
  const body = req.url === '/1mb' ? oneMb : small
  res.writeHead(200, { 'content-type': req.url === '/1mb' ? 'application/octet-stream' : 'application/json', 'content-length': body.length })
  res.end(body)
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const address = server.address()
  console.log(`listening ${typeof address === 'object' && address ? address.port : ''}`)
})
