// A function's worker thread: loads the module once, then runs its handler for one invocation at a
// time, as a Lambda execution environment does, with the Lambda context's fields that make sense
// here. Its console goes to the gateway's log with the request id of the invocation it came from.
import { format } from 'node:util'
import { pathToFileURL } from 'node:url'
import { parentPort, workerData } from 'node:worker_threads'
import type { FailureDetails, FromWorker, Invoke, WorkerSetup } from './messages.ts'
import { httpResponseOf } from './response.ts'

type Handler = (event: unknown, context: LambdaContext, callback?: (err: unknown, result?: unknown) => void) => unknown

interface LambdaContext {
  functionName: string
  functionVersion: string
  memoryLimitInMB: string
  awsRequestId: string
  callbackWaitsForEmptyEventLoop: boolean
  getRemainingTimeInMillis(): number
}

const setup = workerData as WorkerSetup
const port = parentPort as NonNullable<typeof parentPort>
/** The request of the invocation running now: console lines are attributed to it. */
let running: string | null = null

function send(message: FromWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(message, transfer)
}

for (const [method, level] of [['debug', 'debug'], ['trace', 'debug'], ['log', 'info'], ['info', 'info'], ['warn', 'warn'], ['error', 'error']] as const) {
  console[method] = (...args: unknown[]) => send({ type: 'log', requestId: running, level, text: format(...args) })
}

const loading: Promise<Handler> = loadHandler()
// Said once to the pool, and again to every invocation, with its request id.
loading.then(() => send({ type: 'loaded', error: null }), (err: unknown) => send({ type: 'loaded', error: details(err) }))

async function loadHandler(): Promise<Handler> {
  const module = (await import(pathToFileURL(setup.module).href)) as Record<string, unknown>
  // A CommonJS module's exports are its default export too, whatever Node found by name.
  const handler = module[setup.handler] ?? (module.default as Record<string, unknown> | undefined)?.[setup.handler]
  if (typeof handler !== 'function') throw new TypeError(`${setup.module} does not export a function "${setup.handler}"`)
  return handler as Handler
}

port.on('message', (invoke: Invoke) => void run(invoke))

async function run(invoke: Invoke): Promise<void> {
  running = invoke.requestId
  try {
    let handler: Handler
    try {
      handler = await loading
    } catch (err) {
      return send({ type: 'failed', id: invoke.id, phase: 'init', error: details(err) })
    }
    let result: unknown
    try {
      result = await call(handler, invoke)
    } catch (err) {
      return send({ type: 'failed', id: invoke.id, phase: 'handler', error: details(err) })
    }
    const made = httpResponseOf(result)
    if (!made.ok) return send({ type: 'failed', id: invoke.id, phase: 'response', error: { name: 'MalformedResponse', message: made.message, stack: undefined } })
    const { body } = made.response
    send({ type: 'result', id: invoke.id, response: made.response }, typeof body === 'string' ? undefined : [body.buffer as ArrayBuffer])
  } finally {
    running = null
  }
}

/** An async handler, or one in the callback style (three parameters), which Lambda's Node.js runtimes have taken. */
function call(handler: Handler, invoke: Invoke): Promise<unknown> {
  const context: LambdaContext = {
    functionName: setup.functionName,
    functionVersion: '$LATEST',
    memoryLimitInMB: setup.memoryLimitInMB,
    awsRequestId: invoke.requestId,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, invoke.deadline - Date.now()),
  }
  const event: unknown = JSON.parse(invoke.event)
  if (handler.length < 3) return Promise.resolve(handler(event, context))
  return new Promise((resolve, reject) => {
    const returned = handler(event, context, (err, result) => (err === null || err === undefined ? resolve(result) : reject(err)))
    if (returned instanceof Promise) returned.then(resolve, reject)
  })
}

function details(err: unknown): FailureDetails {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack }
  return { name: 'Error', message: String(err), stack: undefined }
}
