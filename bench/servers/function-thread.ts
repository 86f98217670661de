// Reference for the function cases: the same handler in a pool of worker threads behind a plain
// node:http server, with the least a thread hop needs (the event posted to an idle worker, its
// answer posted back) and nothing of the gateway's (no checks, limits, deadlines, memory reads,
// console capture, audit). What isolating a handler in a worker thread costs on Node by itself:
// the floor under "function: echo handler through Bouncer" (issue 15).
//   node function-thread.ts [workers]
import { createServer, type ServerResponse } from 'node:http'
import { isMainThread, parentPort, Worker } from 'node:worker_threads'
import { handler } from '../functions/echo.mjs'

interface Answer {
  statusCode: number
  headers: Record<string, string>
  body: string
}

if (isMainThread) {
  const size = Number(process.argv[2] ?? 8)
  const idle: Worker[] = []
  const waiting: Array<{ event: unknown; res: ServerResponse }> = []
  const pending = new Map<Worker, ServerResponse>()

  const dispatch = (worker: Worker, event: unknown, res: ServerResponse) => {
    pending.set(worker, res)
    worker.postMessage(event)
  }
  const started: Promise<unknown>[] = []
  for (let i = 0; i < size; i++) {
    const worker = new Worker(new URL(import.meta.url))
    // Listening only once every worker runs: started on a loaded machine (CI), the threads took
    // longer than the quick benchmark's run, which then counted no answer at all.
    started.push(new Promise((resolve) => worker.once('message', resolve))) // its 'ready'
    worker.on('message', (answer: Answer | 'ready') => {
      if (answer === 'ready') return
      const res = pending.get(worker) as ServerResponse
      pending.delete(worker)
      res.writeHead(answer.statusCode, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) })
      res.end(answer.body)
      const next = waiting.shift()
      if (next) dispatch(worker, next.event, next.res)
      else idle.push(worker)
    })
    idle.push(worker)
  }

  const server = createServer((req, res) => {
    const [rawPath = '/', rawQueryString = ''] = (req.url ?? '/').split('?')
    const event = { version: '2.0', rawPath, rawQueryString, headers: req.headers, requestContext: { http: { method: req.method ?? 'GET', path: rawPath } }, isBase64Encoded: false }
    const worker = idle.pop()
    if (worker) dispatch(worker, event, res)
    else waiting.push({ event, res })
  })
  await Promise.all(started)
  server.listen(0, '127.0.0.1', () => {
    const address = server.address()
    console.log(`gateway listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : ''}`)
  })
  process.on('SIGTERM', () => process.exit(0)) // lets --cpu-prof write its profile
} else {
  const port = parentPort as NonNullable<typeof parentPort>
  port.on('message', (event: Parameters<typeof handler>[0]) => {
    handler(event).then((answer) => port.postMessage(answer), () => port.postMessage({ statusCode: 502, headers: {}, body: '' }))
  })
  port.postMessage('ready')
}
