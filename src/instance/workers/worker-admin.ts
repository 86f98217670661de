// The primary's side of a worker's private admin socket: a question asked (its answer read whole),
// or an operator's admin request passed through and its answer piped back.
//
// A fresh connection for each request (`agent: false`), never a kept-alive one: a worker closes its
// idle connections when its admin server closes (the end of a drain) or times them out, and a
// request the primary wrote onto such a socket at that moment was reset — a 500 to the operator,
// or a worker missing from a /metrics scrape. Admin traffic is a few requests a second at most;
// a connect on a Unix socket costs microseconds.
import { ADMIN_CLIENT_HEADER, adminClientOf } from '../../admin/index.ts'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { nodeHttp } from '../../http/index.ts'

const { request } = nodeHttp // not imported: http/node-http.ts says why

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
    req.setTimeout(timeoutMs, () => req.destroy(new WorkerSilent(`worker ${worker.id} did not answer ${path} within ${timeoutMs} ms`)))
    req.end()
  })
}

/** A worker that gave no answer within the ask's bound (busy or stuck), as against one that could not be reached. */
export class WorkerSilent extends Error {}

/** One worker's part of a question put to several: its answer, or null and why there is none. */
export interface Asked<W extends WorkerSocket> {
  slot: W
  answer: Answer | null
  /** Why `answer` is missing or not 200, in words for an operator; null when it is a 200. */
  why: string | null
}

/**
 * `path` asked of every worker at once, each within `timeoutMs`, for an answer that speaks for them
 * all (the catalog, the audit heads): a worker that fails to answer is named with why, not left out.
 */
export function askEach<W extends WorkerSocket>(workers: readonly W[], path: string, headers: Record<string, string>, timeoutMs: number): Promise<Array<Asked<W>>> {
  return Promise.all(workers.map(async (slot) => {
    try {
      const answer = await ask(slot, 'GET', path, headers, timeoutMs)
      return { slot, answer, why: answer.status === 200 ? null : `worker ${slot.id} answered ${path} with ${answer.status}` }
    } catch (err) {
      // A refused connection or a reset is not "busy": say what it was (a review).
      const why = err instanceof WorkerSilent
        ? `worker ${slot.id} did not answer within ${timeoutMs / 1000} s (busy or stuck: /readyz says whether it serves)`
        : `worker ${slot.id} could not be asked: ${(err as Error).message}`
      return { slot, answer: null, why }
    }
  }))
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
