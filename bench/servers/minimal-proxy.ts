// Reference floor: the smallest node:http + undici proxy, with none of a gateway's checks (no
// header hygiene, no limits, no error handling worth the name). It shows what Node itself costs.
//   node minimal-proxy.ts UPSTREAM_PORT [stream|dispatch]
import { createServer } from 'node:http'
import { Pool } from 'undici'

const upstream = `http://127.0.0.1:${process.argv[2]}`
const style = process.argv[3] ?? 'stream'
const pool = new Pool(upstream, { connections: 64, pipelining: 1 })

const server = createServer((req, res) => {
  if (style === 'stream') {
    pool.stream({ path: req.url ?? '/', method: req.method ?? 'GET', headers: req.headers, body: req.method === 'GET' ? null : req, opaque: res }, ({ statusCode, headers, opaque }) => {
      const out = opaque as typeof res
      delete headers.connection
      delete headers['keep-alive']
      delete headers['transfer-encoding']
      out.writeHead(statusCode, headers as Record<string, string>)
      return out
    }).catch(() => res.destroy())
    return
  }
  pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers: req.rawHeaders, body: null }, {
    onRequestStart() {},
    onResponseStart(_c, status, headers) {
      delete headers.connection
      delete headers['keep-alive']
      res.writeHead(status, headers as Record<string, string>)
    },
    onResponseData(_c, chunk) { res.write(chunk) },
    onResponseEnd() { res.end() },
    onResponseError() { res.destroy() },
  })
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  console.log(`gateway listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : ''}`)
})
process.on('SIGTERM', () => process.exit(0)) // lets --cpu-prof write its profile
