// An HTTP/2 load generator (wrk speaks HTTP/1.1 only): SESSIONS connections, each keeping STREAMS
// requests in flight, for DURATION seconds; prints one JSON line with what wrk's parser reports.
// node bench/lib/h2-load.ts URL SESSIONS STREAMS DURATION_SEC CA_FILE [HEADERS_JSON]
// It is Node, so it spends more CPU per request than wrk; the gateway's CPU per request is what
// the bench reports, and it runs on the load core.
import { readFileSync } from 'node:fs'
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'

const [url = '', sessions = '4', streams = '16', duration = '5', caFile = '', headersJson = '{}'] = process.argv.slice(2)
const target = new URL(url)
const headers: OutgoingHttpHeaders = { ':path': `${target.pathname}${target.search}`, ...(JSON.parse(headersJson) as OutgoingHttpHeaders) }
const ca = readFileSync(caFile)
const latencies: number[] = []
let requests = 0
let errors = 0
let bytes = 0
let running = true

function loop(session: ClientHttp2Session): void {
  if (!running || session.destroyed) return
  const started = performance.now()
  const stream = session.request(headers)
  stream.on('response', (h) => {
    if (Number(h[':status']) >= 400) errors++
  })
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length))
  stream.on('end', () => {
    requests++
    latencies.push(performance.now() - started)
    loop(session)
  })
  stream.on('error', () => {
    errors++
    loop(session)
  })
}

const clients = Array.from({ length: Number(sessions) }, () => {
  const session = connect(target.origin, { ca, servername: 'localhost' })
  session.on('error', () => errors++)
  session.once('connect', () => {
    for (let i = 0; i < Number(streams); i++) loop(session)
  })
  return session
})

const began = performance.now()
setTimeout(() => {
  running = false
  const seconds = (performance.now() - began) / 1000
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0
  console.log(JSON.stringify({ requests, rps: requests / seconds, p50ms: at(0.5), p99ms: at(0.99), bytesPerSec: bytes / seconds, errors }))
  for (const session of clients) session.destroy()
}, Number(duration) * 1000)
