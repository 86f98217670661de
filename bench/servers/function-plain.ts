// Reference for the function cases: the same handler called in process by a plain node:http server,
// with the least a Lambda adapter does (a format 2.0 event of the request line and headers, the
// structured response written back). No isolation, no checks: what the handler itself costs.
//   node function-plain.ts
import { createServer } from 'node:http'
import { handler } from '../functions/echo.mjs'

const server = createServer((req, res) => {
  const [rawPath = '/', rawQueryString = ''] = (req.url ?? '/').split('?')
  const event = { version: '2.0', rawPath, rawQueryString, headers: req.headers, requestContext: { http: { method: req.method ?? 'GET', path: rawPath } }, isBase64Encoded: false }
  handler(event).then((answer) => {
    res.writeHead(answer.statusCode, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) })
    res.end(answer.body)
  }, () => {
    res.writeHead(502)
    res.end()
  })
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  console.log(`gateway listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : ''}`)
})
process.on('SIGTERM', () => process.exit(0)) // lets --cpu-prof write its profile
