// Crashing one worker thread of a real `bouncer serve` (started with --inspect=127.0.0.1:0): an
// uncaught exception thrown inside it through the inspector protocol, so the gateway has no test hook.
import type { Session } from 'node:inspector/promises'
import { waitForText } from './wait.ts'

/** The thread's own handler sees it: it drains, then ends with exit code 1. */
const HANDLED_CRASH = 'setTimeout(() => { throw new Error("a crash, by a test") }, 0); 1'
/**
 * No handler sees it: the Worker emits 'error', as it does when the thread meets its heap limit
 * (ERR_WORKER_OUT_OF_MEMORY), then ends.
 */
export const UNHANDLED_CRASH = 'process.removeAllListeners("uncaughtException"); setTimeout(() => { throw new Error("a crash, by a test") }, 0); 1'

/** Throws an uncaught exception in the worker thread named `bouncer <id>`; resolves once its stderr says so. */
export async function crashWorker(stderr: () => string, id: string, expression = HANDLED_CRASH): Promise<void> {
  const worker = await inspectWorker(stderr, id)
  worker.evaluate(expression)
  await waitForText(stderr, 'a crash, by a test', 30_000)
  worker.close()
}

/** A WebSocket to the inspector of a `bouncer serve` started with --inspect, open. */
async function connectInspector(stderr: () => string): Promise<WebSocket> {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(stderr())?.[1]
  if (!url) throw new Error(`no inspector URL in:\n${stderr().slice(0, 2000)}`)
  const socket = new WebSocket(url)
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve)
    socket.addEventListener('error', reject)
  })
  return socket
}

/**
 * Holds the next thread named `bouncer <id>` that starts (a crashed worker's replacement) before it
 * runs anything: `started` resolves once it is held, `release()` lets it run.
 */
export async function holdNextWorker(stderr: () => string, id: string): Promise<{ started: Promise<void>; release(): void }> {
  const socket = await connectInspector(stderr)
  let sessionId = ''
  const started = new Promise<void>((resolve) => {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { method?: string; params?: { sessionId: string; waitingForDebugger: boolean; workerInfo: { title: string } } }
      if (message.method !== 'NodeWorker.attachedToWorker' || !message.params?.waitingForDebugger || !message.params.workerInfo.title.includes(`bouncer ${id}`)) return
      sessionId = message.params.sessionId
      resolve()
    })
  })
  socket.send(JSON.stringify({ id: 1, method: 'NodeWorker.enable', params: { waitForDebuggerOnStart: true } }))
  return {
    started,
    release() {
      const message = JSON.stringify({ id: 1, method: 'Runtime.runIfWaitingForDebugger' })
      socket.send(JSON.stringify({ id: 2, method: 'NodeWorker.sendMessageToWorker', params: { sessionId, message } }))
      socket.send(JSON.stringify({ id: 3, method: 'NodeWorker.disable' }))
      setTimeout(() => socket.close(), 500).unref()
    },
  }
}

/** Runs `expression` on the main thread of a `bouncer serve` started with --inspect (server.workers' primary), and waits for it. */
export async function evaluateInMain(stderr: () => string, expression: string): Promise<void> {
  const socket = await connectInspector(stderr)
  try {
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('message', (event) => {
        const message = JSON.parse(String(event.data)) as { id?: number; result?: { exceptionDetails?: unknown } }
        if (message.id !== 1) return
        if (message.result?.exceptionDetails) reject(new Error(`the expression threw: ${JSON.stringify(message.result.exceptionDetails)}`))
        else resolve()
      })
      socket.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression } }))
    })
  } finally {
    socket.close()
  }
}

/** Runs expressions in the worker thread named `bouncer <id>` of a `bouncer serve` started with --inspect (no test hook). */
export async function inspectWorker(stderr: () => string, id: string): Promise<{ evaluate(expression: string): void; close(): void }> {
  const socket = await connectInspector(stderr)
  const attached = new Promise<string>((resolve) => {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { method?: string; params?: { sessionId: string; workerInfo: { title: string } } }
      if (message.method === 'NodeWorker.attachedToWorker' && message.params?.workerInfo.title.includes(`bouncer ${id}`)) resolve(message.params.sessionId)
    })
  })
  socket.send(JSON.stringify({ id: 1, method: 'NodeWorker.enable', params: { waitForDebuggerOnStart: false } }))
  const sessionId = await attached
  return {
    evaluate(expression) {
      const message = JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression } })
      socket.send(JSON.stringify({ id: 2, method: 'NodeWorker.sendMessageToWorker', params: { sessionId, message } }))
    },
    close: () => socket.close(),
  }
}

/**
 * Evaluates `expression` in one of this process's own worker threads, the one whose script URL or
 * name (its inspector title) contains `urlPart` (the inspector's NodeWorker domain, through an
 * in-process Session), and resolves once the thread has run it. Two threads of one script are told
 * apart by name: the audit side threads' lanes (test files share their processes, so an earlier
 * file's thread may be running).
 */
export async function evaluateInWorker(session: Session, urlPart: string, expression: string): Promise<void> {
  const attached = new Promise<string>((resolve) => {
    session.on('NodeWorker.attachedToWorker', ({ params }) => {
      if (params.workerInfo.url.includes(urlPart) || params.workerInfo.title.includes(urlPart)) resolve(params.sessionId)
    })
  })
  await session.post('NodeWorker.enable', { waitForDebuggerOnStart: false })
  const sessionId = await attached
  const evaluated = new Promise<void>((resolve) => {
    session.on('NodeWorker.receivedMessageFromWorker', ({ params }) => {
      if (params.sessionId === sessionId && (JSON.parse(params.message) as { id?: number }).id === 1) resolve()
    })
  })
  await session.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression } }) })
  await evaluated
}
