// node bench/isolate-heaps.ts PORT: the JS heap of every isolate of a gateway started with
// --inspect=127.0.0.1:PORT (e.g. BENCH_NODE_FLAGS='--inspect=127.0.0.1:9339' npm run soak): the
// request thread and each worker thread (audit, its side thread, functions), before and after a
// full GC forced through the inspector. /metrics shows the request thread's heap only, and before
// a GC; a leak is a heap that still grows after one. Run it a few times during a soak and compare.
interface Reply {
  result?: { result?: { value?: string } }
}
const port = process.argv[2] ?? '9339'
const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>
if (!target) throw new Error(`no inspector target on port ${port}`)
const socket = new WebSocket(target.webSocketDebuggerUrl)
await new Promise((resolve, reject) => {
  socket.addEventListener('open', resolve)
  socket.addEventListener('error', reject)
})
let next = 1
const pending = new Map<string, (reply: Reply) => void>()
const workers: Array<{ sessionId: string; url: string }> = []
socket.addEventListener('message', (event) => {
  const message = JSON.parse(String(event.data)) as { id?: number; method?: string; params?: { sessionId: string; message: string; workerInfo: { url: string } } }
  if (message.id !== undefined) pending.get(`:${message.id}`)?.(message as Reply)
  if (message.method === 'NodeWorker.attachedToWorker' && message.params) workers.push({ sessionId: message.params.sessionId, url: message.params.workerInfo.url })
  if (message.method === 'NodeWorker.receivedMessageFromWorker' && message.params) {
    const inner = JSON.parse(message.params.message) as { id?: number }
    if (inner.id !== undefined) pending.get(`${message.params.sessionId}:${inner.id}`)?.(inner as Reply)
  }
})
/** A protocol call on the main thread's session (sessionId '') or a worker's. */
function call(sessionId: string, method: string, params: object = {}): Promise<Reply> {
  const id = next++
  return new Promise((resolve) => {
    pending.set(`${sessionId}:${id}`, resolve)
    if (sessionId === '') socket.send(JSON.stringify({ id, method, params }))
    else socket.send(JSON.stringify({ id: next++, method: 'NodeWorker.sendMessageToWorker', params: { sessionId, message: JSON.stringify({ id, method, params }) } }))
  })
}
await call('', 'NodeWorker.enable', { waitForDebuggerOnStart: false })
await new Promise((resolve) => setTimeout(resolve, 500)) // the attachedToWorker events of the threads already running
const expression = 'JSON.stringify((() => { const m = process.memoryUsage(); return { used: +(m.heapUsed / 1048576).toFixed(1), total: +(m.heapTotal / 1048576).toFixed(1), external: +(m.external / 1048576).toFixed(1) } })())'
const lines = [`${new Date().toISOString()}  MB: used / total before a full GC → used / total after; external after`]
for (const { sessionId, url } of [{ sessionId: '', url: 'request thread' }, ...workers]) {
  const before = JSON.parse((await call(sessionId, 'Runtime.evaluate', { expression })).result?.result?.value ?? '{}') as Record<string, number>
  await call(sessionId, 'HeapProfiler.collectGarbage')
  const after = JSON.parse((await call(sessionId, 'Runtime.evaluate', { expression })).result?.result?.value ?? '{}') as Record<string, number>
  lines.push(`${url.split('/').slice(-2).join('/').padEnd(24)} ${before.used} / ${before.total} → ${after.used} / ${after.total}; ${after.external}`)
}
console.log(lines.join('\n'))
await call('', 'NodeWorker.disable')
socket.close()
