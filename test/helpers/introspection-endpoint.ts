// An RFC 7662 introspection endpoint whose answers the test writes: a real node:http server on
// 127.0.0.1 that answers each token as the test says (inactive when it says nothing), and records
// every token it was asked about. For answers a real provider would not give (act claims, claims
// of the wrong kind, UTF-8 split across chunks); oidc-provider's own endpoint is in
// introspection.test.ts.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type IntrospectionAnswer = (res: ServerResponse) => void

export interface TestIntrospectionEndpoint {
  url: string
  /** What the endpoint answers for each token; a token not listed is inactive. */
  answers: Map<string, IntrospectionAnswer>
  /** Every token the endpoint was asked about, in order. */
  asked: string[]
  close(): Promise<void>
}

/** A 200 with this JSON body. */
export function answerJson(body: unknown): IntrospectionAnswer {
  return (res) => {
    const text = JSON.stringify(body)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
}

export async function startIntrospectionEndpoint(): Promise<TestIntrospectionEndpoint> {
  const answers = new Map<string, IntrospectionAnswer>()
  const asked: string[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('token') ?? ''
      asked.push(token)
      ;(answers.get(token) ?? answerJson({ active: false }))(res)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`,
    answers,
    asked,
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}
