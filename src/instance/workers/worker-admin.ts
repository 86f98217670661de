// The primary's side of a worker's private admin socket: a question asked (its answer read whole),
// or an operator's admin request passed through and its answer piped back.
//
// A fresh connection for each request (`agent: false`), never a kept-alive one: a worker closes its
// idle connections when its admin server closes (the end of a drain) or times them out, and a
// request the primary wrote onto such a socket at that moment was reset — a 500 to the operator,
// or a worker missing from a /metrics scrape. Admin traffic is a few requests a second at most;
// a connect on a Unix socket costs microseconds.
import { ADMIN_CLIENT_HEADER, adminClientOf } from '../../admin/index.ts'
import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'

/** A worker's admin socket, and the worker's name for messages. */
export interface WorkerSocket {
  id: string
  socket: string
}

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** A request to a worker's admin socket, its answer read whole. */
export function ask(worker: WorkerSocket, method: string, path: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: worker.socket, agent: false, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`worker ${worker.id} did not answer ${path} within ${timeoutMs} ms`)))
    req.end()
  })
}

/** An admin request passed through to a worker, and its answer back. */
export function pipeTo(worker: WorkerSocket, req: IncomingMessage, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers }
    delete headers.connection
    // Set here, over any the client sent: the worker believes it on its socket (admin/server.ts).
    headers[ADMIN_CLIENT_HEADER] = adminClientOf(req)
    const upstream = request({ socketPath: worker.socket, agent: false, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, pickHeaders(answer.headers))
      answer.pipe(res)
      answer.on('end', resolve)
      answer.on('error', reject)
    })
    upstream.on('error', reject)
    // A client that goes ends the worker's side too: piping alone left the worker writing into a
    // full socket for ever (an abandoned export, its records held).
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy()
      resolve()
    })
    req.pipe(upstream)
  })
}

/** The worker's admin socket refused the connection or is gone (its drain ended): nothing was sent. */
export function refusedConnection(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ECONNREFUSED' || code === 'ENOENT'
}

/** A worker's answer's headers, less those of its own connection to the primary. */
export function pickHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === 'connection' || name === 'keep-alive' || name === 'transfer-encoding') continue
    out[name] = value
  }
  return out
}
