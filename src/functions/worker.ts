// A function's worker thread: loads the module once, then runs its handler for one invocation at a
// time, as a Lambda execution environment does, with the Lambda context's fields that make sense
// here. Its console goes to the gateway's log with the request id of the invocation it came from.
import { StringDecoder } from 'node:string_decoder'
import { format } from 'node:util'
import { pathToFileURL } from 'node:url'
import { getHeapStatistics } from 'node:v8'
import { parentPort, workerData } from 'node:worker_threads'
import { cutLine, MAX_CUTTABLE, MAX_LOG_LINE, UNFINISHED_BYTES, type FailureDetails, type FromWorker, type Invoke, type InvokedFor, type LogLevel, type WorkerSetup } from './messages.ts'
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
/**
 * The request (id and trace id) of the invocation a console line comes from: the one running, or, for a timer,
 * the one that set it. A timer left by an earlier invocation logged under whoever ran when it fired
 * (probe finding). Timers are bound where they are set, not by AsyncLocalStorage: that cost ~3 µs
 * of the worker's ~22 per invocation in the function bench (bench/README.md "Profiling"). Work left
 * behind on a promise still logs under the invocation running when it resumes, or none.
 */
let running: InvokedFor | null = null

/** A log message's request and trace ids, of `invocation` (null outside any). */
function idsOf(invocation: InvokedFor | null): { requestId: string | null; traceId: string | null } {
  return { requestId: invocation?.requestId ?? null, traceId: invocation?.traceId ?? null }
}

function boundToInvocation<A extends unknown[]>(callback: (...args: A) => unknown): (...args: A) => unknown {
  const owner = running
  return (...args: A) => {
    const previous = running
    running = owner
    try {
      return callback(...args)
    } finally {
      running = previous
    }
  }
}

for (const name of ['setTimeout', 'setInterval', 'setImmediate'] as const) {
  const schedule = globalThis[name] as (callback: unknown, ...rest: unknown[]) => unknown
  ;(globalThis as Record<string, unknown>)[name] = (callback: unknown, ...rest: unknown[]) =>
    schedule(typeof callback === 'function' ? boundToInvocation(callback as (...args: unknown[]) => unknown) : callback, ...rest)
}

function send(message: FromWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(message, transfer)
}

// What a worker may log per second. Each line is a copy to the gateway's thread and a write there:
// a handler logging in a loop froze the gateway for tens of seconds and grew it by gigabytes (probe
// finding). Past either budget lines are dropped, and how many is said once the second is over.
const LOG_LINES_PER_SECOND = 1_000
const LOG_CHARS_PER_SECOND = 1_048_576
const logBudget = { windowStart: 0, lines: 0, chars: 0, dropped: 0, droppedFor: null as InvokedFor | null, note: null as NodeJS.Timeout | null }

/** True when a line may still be logged this second; counts it as dropped otherwise. */
function logAdmitted(): boolean {
  const now = Date.now()
  if (now - logBudget.windowStart >= 1_000) {
    reportDroppedLines()
    logBudget.windowStart = now
    logBudget.lines = 0
    logBudget.chars = 0
  }
  if (logBudget.lines < LOG_LINES_PER_SECOND && logBudget.chars < LOG_CHARS_PER_SECOND) return true
  logBudget.dropped++
  logBudget.droppedFor = running
  logBudget.note ??= setTimeout(reportDroppedLines, 1_000 - (now - logBudget.windowStart)).unref()
  return false
}

function reportDroppedLines(): void {
  if (logBudget.note !== null) clearTimeout(logBudget.note)
  logBudget.note = null
  if (logBudget.dropped === 0) return
  const text = `${logBudget.dropped} console lines dropped: a function's worker logs at most ${LOG_LINES_PER_SECOND} lines or ${LOG_CHARS_PER_SECOND / 1_048_576} MB a second`
  send({ type: 'log', ...idsOf(logBudget.droppedFor), level: 'warn', text })
  logBudget.dropped = 0
}

/** One admitted line, cut here: a longer one is never copied to the gateway's thread. */
function log(level: LogLevel, text: string, stream?: 'stdout' | 'stderr', owner = running): void {
  const line = cutLine(text)
  logBudget.lines++
  logBudget.chars += line.length
  send({ type: 'log', ...idsOf(owner), level, text: line, ...(stream ? { stream } : {}) })
}

for (const [method, level] of [['debug', 'debug'], ['trace', 'debug'], ['log', 'info'], ['info', 'info'], ['warn', 'warn'], ['error', 'error']] as const) {
  // Checked before formatting: a dropped line costs the handler nothing more.
  console[method] = (...args: unknown[]) => {
    if (logAdmitted()) log(level, format(...args))
  }
}

/**
 * A string written with an encoding that names its bytes (`write(text, 'hex')`): logged as the text
 * those bytes are, as a terminal shows them, not the hex or base64 digits themselves (a probe).
 */
function bytesNamed(encoding: unknown): encoding is BufferEncoding {
  return typeof encoding === 'string' && Buffer.isEncoding(encoding) && !/^utf-?8$/i.test(encoding)
}

/**
 * What the handler writes to process.stdout/stderr itself (console.table, console.dir, …
 * too): the same lines, cut and budget as console's, instead of the worker's own stdio, which
 * copies every byte to the gateway's thread. Answers what logs a line left unfinished.
 */
function captureStream(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr', level: LogLevel, shared: SharedArrayBuffer): () => void {
  let partial = ''
  // `partial` as UTF-8 in memory the gateway reads when this worker is terminated or dies mid-call
  // (messages.ts UnfinishedLines): a timed-out handler's last line was lost (a probe).
  const mirrorLength = new Int32Array(shared, 0, 1)
  const mirrorBytes = new Uint8Array(shared, 4, UNFINISHED_BYTES)
  let mirrored = 0
  /** `added` is what `partial` gained; `restart`: it began anew with it. */
  const mirror = (added: string, restart: boolean) => {
    if (restart) mirrored = 0
    if (added !== '' && mirrored < UNFINISHED_BYTES) mirrored += utf8.encodeInto(added, mirrorBytes.subarray(mirrored)).written
    Atomics.store(mirrorLength, 0, mirrored)
  }
  /**
   * The invocation that began the unfinished line: it is logged under that one's request id, at the
   * end of it or when another writes. It waited for the next line break, whoever wrote it, and went
   * out glued to the next caller's line under its request id (probe finding).
   */
  let partialOwner: InvokedFor | null = null
  // Across writes: a character's UTF-8 bytes cut between two (a piped stream's chunks) came out as U+FFFDs (probe finding).
  const decoder = new StringDecoder('utf8')
  const line = (text: string, owner = running) => {
    if (text !== '' && logAdmitted()) log(level, text, name, owner)
  }
  const flush = () => {
    line(partial + decoder.end(), partialOwner)
    partial = ''
    mirror('', true)
  }
  stream.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown): boolean => {
    if (partialOwner !== running) flush()
    partialOwner = running
    const size = typeof chunk === 'string' ? chunk.length : chunk.byteLength
    // Not scanned for lines: that would flatten a rope of any length (messages.ts MAX_CUTTABLE).
    const text = size > MAX_CUTTABLE ? `(a write of ${size} ${typeof chunk === 'string' ? 'chars' : 'bytes'}, too long to log)\n` : typeof chunk !== 'string' ? decoder.write(chunk) : bytesNamed(encoding) ? decoder.write(Buffer.from(chunk, encoding)) : chunk
    let at = 0
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', at)) {
      line(partial + text.slice(at, nl))
      partial = ''
      at = nl + 1
    }
    const added = text.slice(at)
    partial += added
    if (partial.length > MAX_LOG_LINE) {
      line(partial)
      partial = ''
    }
    if (at > 0 || partial === '') mirror(partial, true)
    else mirror(added, false)
    const done = typeof encoding === 'function' ? encoding : callback
    if (typeof done === 'function') process.nextTick(done as () => void)
    return true
  }) as NodeJS.WriteStream['write']
  return flush
}
const utf8 = new TextEncoder()
const flushUnfinishedLines = [captureStream(process.stdout, 'stdout', 'info', setup.unfinished.stdout), captureStream(process.stderr, 'stderr', 'warn', setup.unfinished.stderr)]

/**
 * The worker's JS heap in use and its memory outside it (Buffers, ArrayBuffers), which `memory`'s
 * resourceLimits do not bound: the pool replaces a worker over `memory` (probe finding). `sent`: a
 * body about to be transferred, no longer the worker's.
 */
function usedBytes(sent = 0): number {
  const heap = getHeapStatistics()
  return heap.used_heap_size + heap.external_memory - sent
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
  // Not the Invoke itself: a timer bound to the invocation would keep its event's text alive.
  running = { requestId: invoke.requestId, traceId: invoke.traceId }
  try {
    let handler: Handler
    try {
      handler = await loading
    } catch (err) {
      return send({ type: 'failed', id: invoke.id, phase: 'init', error: details(err), usedBytes: usedBytes() })
    }
    let result: unknown
    try {
      result = await call(handler, invoke, Date.now() + invoke.timeoutMs)
    } catch (err) {
      return send({ type: 'failed', id: invoke.id, phase: 'handler', error: details(err), usedBytes: usedBytes() })
    }
    let made: ReturnType<typeof httpResponseOf>
    try {
      made = httpResponseOf(result)
    } catch (err) {
      // Thrown by the handler's code as its result was read (a getter, a toJSON, a proxy's trap).
      return send({ type: 'failed', id: invoke.id, phase: 'handler', error: details(err), usedBytes: usedBytes() })
    }
    if (!made.ok) {
      const error = { name: made.oversized ? 'ResponseSizeTooLarge' : 'MalformedResponse', message: made.message, stack: undefined }
      return send({ type: 'failed', id: invoke.id, phase: made.oversized ? 'oversized' : 'response', error, usedBytes: usedBytes() })
    }
    const { body } = made.response
    if (typeof body === 'string') send({ type: 'result', id: invoke.id, response: made.response, usedBytes: usedBytes() })
    else send({ type: 'result', id: invoke.id, response: made.response, usedBytes: usedBytes(body.byteLength) }, [body.buffer as ArrayBuffer])
  } finally {
    for (const flush of flushUnfinishedLines) flush() // an invocation's output is in the log once it has answered
    reportDroppedLines() // under this invocation's request id
    running = null
  }
}

/** An async handler, or one in the callback style (three parameters), which Lambda's Node.js runtimes have taken. */
function call(handler: Handler, invoke: Invoke, deadline: number): Promise<unknown> {
  const context: LambdaContext = {
    functionName: setup.functionName,
    functionVersion: '$LATEST',
    memoryLimitInMB: setup.memoryLimitInMB,
    awsRequestId: invoke.requestId,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  }
  const event: unknown = JSON.parse(invoke.event)
  if (handler.length < 3) return Promise.resolve(handler(event, context))
  return new Promise((resolve, reject) => {
    const returned = handler(event, context, (err, result) => (err === null || err === undefined ? resolve(result) : reject(err)))
    // Any thenable, as Lambda's runtime takes one (a promise library's, a query builder's): only a
    // native Promise was, and another was left unread until the timeout, 504 (a probe).
    if (isThenable(returned)) returned.then(resolve, reject)
  })
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

function details(err: unknown): FailureDetails {
  try {
    if (err instanceof Error) return { name: cutLine(String(err.name)), message: cutLine(String(err.message)), stack: err.stack === undefined ? undefined : cutLine(String(err.stack)) }
    return { name: 'Error', message: cutLine(String(err)), stack: undefined }
  } catch {
    // Object.create(null) has no string form, and a getter may throw: reading one here threw out of
    // run(), and the unhandled rejection ended the worker (probe finding).
    return { name: 'Error', message: 'the handler threw a value that cannot be read as an error', stack: undefined }
  }
}
