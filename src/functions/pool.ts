// A function's warm pool: `concurrency` worker threads, each with the function's memory limit, each
// running one invocation at a time. A worker whose invocation passes the timeout is terminated and
// replaced (V8 stops even a tight loop); one that dies (out of memory, an uncaught error,
// process.exit) fails its invocation with function_error and is replaced. The gateway's thread and
// every other function's workers carry on: a handler that leaks or loops costs its own worker only.
// One holding more than its memory outside the JS heap (Buffers) is replaced once it has answered.
//
// Beyond `concurrency` invocations in flight the pool refuses at once (upstream_saturated, as an
// upstream at max_concurrent), as Lambda throttles at a function's reserved concurrency. A timed-out
// worker held in a system call (terminate() cannot stop one) counts as in flight until it returns.
import type { Readable } from 'node:stream'
import { Worker } from 'node:worker_threads'
import type { FunctionConfig } from '../config/index.ts'
import { GatewayError } from '../errors/index.ts'
import { terminateThread, type BackgroundTasks, type Logger } from '../telemetry/index.ts'
import { cutLine, MAX_LOG_LINE, unfinishedLine, unfinishedLines, type FailureDetails, type FailurePhase, type FromWorker, type FunctionResponse, type Invoke, type InvokedFor, type UnfinishedLines, type WorkerSetup } from './messages.ts'
import { MAX_ANSWER_BYTES } from './answer-size.ts'
import { postedResponseProblem } from './response.ts'

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)

export interface FunctionPool {
  readonly name: string
  readonly concurrency: number
  readonly timeoutMs: number
  readonly memoryMb: number
  /** Invocations holding a worker (taken, not yet given back). */
  readonly inFlight: number
  /**
   * Timed-out workers held in a system call (a read of a hung file system): terminate() cannot stop
   * them. Each counts against `concurrency` until it ends, so a function that hangs on every call
   * holds at most `concurrency` such threads rather than one more per timeout.
   */
  readonly held: number
  /** close() was called: the pool takes no more invocations (a reload retired it, or a shutdown). */
  readonly closed: boolean
  /** A free worker for one invocation; null when all `concurrency` are busy, or the pool is closed. */
  take(): PoolSlot | null
  /** Runs the handler on a taken worker. Rejects only with a GatewayError (function_error, function_timeout). */
  run(slot: PoolSlot, event: string, request: InvokedFor): Promise<FunctionResponse>
  /** Gives back a worker that was taken but not run (the request body never came). */
  giveBack(slot: PoolSlot): void
  /**
   * Terminates every worker. On a shutdown an invocation still running fails (502): its request has
   * had server.shutdown_timeout. Retired by a reload (`finishFirst`), the invocations in flight
   * finish first, each bounded by the function's timeout: their clients are still there.
   */
  close(options?: { finishFirst?: boolean }): Promise<void>
  /**
   * Null once its first worker has loaded the module; why it could not otherwise (a syntax error, a
   * missing export, a top level that throws or ends the thread). Never settles offline.
   */
  readonly loaded: Promise<Error | null>
  /**
   * The current values of the `${secret:NAME}` in the function's `environment`: at compile (the
   * pool's workers start then) and after every secrets refresh. A worker started with other values
   * is replaced when it is next taken: an invocation running keeps the environment it began with.
   */
  applySecrets(resolve: (template: string) => string): void
}

export interface PoolDeps {
  logger: Logger
  /** Null offline (bouncer explain): such a pool never starts a worker. */
  background: BackgroundTasks | null
}

export interface PoolSlot {
  /** Null until needed: a worker that died between invocations is started again on the next take. */
  worker: Worker | null
  /** Its worker has loaded the module: an invocation's timeout runs from the call, not the load. */
  loaded: boolean
  pending: Pending | null
  /** The environment its worker was started with (the pool's `environmentText` then). */
  startedWith: string
}

/**
 * How long a worker's module may take to load (its top level: imports, connections made at load)
 * outside an invocation's time: Lambda's init phase has 10 s. Until then the function's own timeout
 * has not started: a cold start after a replaced worker, or at the gateway's start, timed out calls
 * that took far less than `timeout` once loaded. A load still running then goes on for up to the
 * function's `timeout` more, as Lambda retries an init that overran within the invocation, before
 * its worker is terminated and the call answered 504: terminated at 10 s, a module whose top level
 * takes 12 s started over on every call and never served while calls kept coming (a probe).
 */
const LOAD_TIMEOUT_MS = 10_000

/** The log fields naming an invocation's request: its id and its trace's, as the audit record has them. */
function logFields(request: InvokedFor): { request_id: string; trace_id: string | null } {
  return { request_id: request.requestId, trace_id: request.traceId }
}

interface Pending {
  id: number
  request: InvokedFor
  timer: NodeJS.Timeout | undefined
  /** Its worker's load ran past LOAD_TIMEOUT_MS: it may take up to the function's timeout more. */
  loadOverran: boolean
  resolve(response: FunctionResponse): void
  reject(error: GatewayError): void
}

export function createFunctionPool(config: FunctionConfig, deps: PoolDeps): FunctionPool {
  const { logger, background } = deps
  const name = config.name
  const setup: Omit<WorkerSetup, 'unfinished'> = { module: config.module, handler: config.handler, functionName: name, memoryLimitInMB: String(config.memory) }
  // The young generation is a slice of `memory`, not extra: small, so a leak reaches the old space's limit.
  const young = Math.max(1, Math.min(16, Math.floor(config.memory / 8)))
  const resourceLimits = { maxOldGenerationSizeMb: config.memory - young, maxYoungGenerationSizeMb: young }
  // Secret references stay as written until applySecrets gives their values: such a pool starts no worker before.
  let env = workerEnvironment(config, (template) => template)
  let environmentText = JSON.stringify(env)
  const namesSecrets = Object.values(config.environment).some((value) => value.includes('${secret:'))
  let waitingForSecrets = namesSecrets
  const memoryBytes = config.memory * 1_048_576
  const slots: PoolSlot[] = Array.from({ length: config.concurrency }, () => ({ worker: null, loaded: false, pending: null, startedWith: environmentText }))
  const idle: PoolSlot[] = [...slots]
  let inFlight = 0
  let held = 0
  let nextId = 0
  let closing = false
  /** Each worker's unfinished stdout and stderr lines, read once it has stopped mid-call. */
  const unfinished = new WeakMap<Worker, UnfinishedLines>()
  /** The workers close() terminates: their exit is the pool's stop, not the handler's failure. */
  const stopping = new WeakSet<Worker>()
  /** Set while a reload's retirement waits for the invocations in flight. */
  let drained: (() => void) | null = null
  let settleLoad!: (error: Error | null) => void
  const loaded = new Promise<Error | null>((resolve) => (settleLoad = resolve))
  let loadFailureReported = false
  // Once per pool (every worker loads the same file), whichever worker finds it: the first, or a
  // replacement that reads a file edited on disk since (a review: only the first was heard). A turn
  // of the event loop later: a reload that refuses this config for it (instance/reload.ts) has
  // closed the pool by then, whose calls will never answer 502.
  function loadFailed(error: Error): void {
    if (loadFailureReported) return
    loadFailureReported = true
    setImmediate(() => {
      if (!closing) background?.failed('function_worker', error, { message: `function ${name}: its module could not be loaded; its invocations answer 502 function_error`, fields: { function: name } })
    })
  }
  void loaded.then((error) => error !== null && loadFailed(error))

  function start(slot: PoolSlot): Worker {
    const lines = unfinishedLines()
    // Named: the OS thread's name (`top -H`, /proc/PID/task/*/comm; Linux keeps 15 characters) says whose it is.
    const worker = new Worker(WORKER_URL, { name: `function ${name}`, workerData: { ...setup, unfinished: lines } satisfies WorkerSetup, resourceLimits, env, stdout: true, stderr: true })
    unfinished.set(worker, lines)
    slot.worker = worker
    slot.loaded = false
    slot.startedWith = environmentText
    // worker.ts logs what the handler writes to process.stdout/stderr; whatever still reaches the
    // worker's own stdio goes to the log too, never to the gateway's stdout.
    logLines(worker.stdout, (text) => logger.info({ function: name, stream: 'stdout' }, text))
    logLines(worker.stderr, (text) => logger.warn({ function: name, stream: 'stderr' }, text))
    let strayReported = false
    worker.on('message', (posted: unknown) => {
      if (slot.worker !== worker) return
      // The handler shares the worker's port: what it posts there must never throw on the gateway's
      // thread (an uncaught exception drains and stops the gateway: probe finding).
      const message = workerMessage(posted)
      if (message === null) {
        if (!strayReported) logger.warn({ function: name }, `function ${name}: its worker posted a message that is not the gateway's; it and any further ones are dropped`)
        strayReported = true
        return
      }
      try {
        receive(slot, worker, message)
      } catch (err) {
        logger.error({ function: name, err }, `function ${name}: a message from its worker could not be handled`)
      }
    })
    let failure: Error | null = null
    worker.on('error', (err) => {
      failure = err
    })
    worker.on('exit', (code) => {
      if (slot.worker !== worker) return // replaced: terminated on purpose
      slot.worker = null
      const pending = slot.pending
      // The thread never ran (no memory for it, no file descriptors left: EMFILE): the module was
      // never tried. Taken for a load, it read as "its module could not be loaded", and a reload
      // adding the function was refused for it. A passing shortage: the next invocation starts one.
      const startFailed = (failure as { code?: string } | null)?.code === 'ERR_WORKER_INIT_FAILED'
      if (!startFailed) settleLoad(failure ?? new Error(`the worker exited with code ${code} before its module was loaded`)) // no effect once loaded
      if (pending !== null) logUnfinished(worker, pending.request)
      if (closing && (pending === null || stopping.has(worker))) {
        // Stopped by close(), or dead on its own with nothing running: no replacement either way.
        if (pending !== null) stopped(slot, pending)
        return
      }
      const why = failure ?? new Error(`the worker exited with code ${code}`)
      if (startFailed) {
        const message = `function ${name}: its worker thread could not be started (${why.message}); another is started for the next invocation`
        if (pending === null) background?.failed('function_worker', why, { message, fields: { function: name } })
        else {
          logger.error({ function: name, ...logFields(pending.request), err: why }, message)
          settle(slot, pending, new GatewayError('function_error', { detail: `Function "${name}" did not run: the gateway could not start a worker for it (out of memory or of open files), which may pass. The gateway's log has the error under this request id.`, cause: why }))
        }
        return
      }
      if (pending) {
        // Also in a retired pool draining its invocations: a crash there was answered and logged as
        // the pool's own stop ("the gateway is shutting down"), its error lost (a probe).
        const outOfMemory = (failure as { code?: string } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY'
        const then = closing ? '' : ': its worker was replaced'
        logger.error({ function: name, ...logFields(pending.request), err: why }, outOfMemory ? `function ${name} ran out of memory (${config.memory}MB)${then}` : `function ${name} failed: its worker stopped${closing ? '' : ' and was replaced'}`)
        settle(slot, pending, new GatewayError('function_error', {
          detail: outOfMemory
            ? `Function "${name}" ran out of memory (${config.memory}MB).`
            : `Function "${name}" failed: its worker stopped. The gateway's log has the error under this request id.`,
          cause: why,
        }))
        if (!closing) start(slot) // replaced now: its next invocation should find it warm
      } else {
        // Not caused by a request: started again on the next take, so a module that kills its
        // worker at once costs one start per request, never a loop.
        background?.failed('function_worker', why, { message: `function ${name}: a worker stopped between invocations; it is started again when needed`, fields: { function: name } })
      }
    })
    return worker
  }

  function receive(slot: PoolSlot, worker: Worker, message: FromWorker): void {
    if (message.type === 'loaded') {
      if (slot.loaded) return // said once a worker, before any handler runs: a handler's own post changes nothing
      slot.loaded = true
      const error = message.error === null ? null : asError(message.error)
      settleLoad(error)
      if (error !== null) loadFailed(error)
      if (error !== null && slot.pending === null) dropWorker(slot, worker) // no call waits to hear why
      // The invocation that waited for the load: its timeout starts now (a failed load answers it).
      const waiting = slot.pending
      if (waiting !== null && error === null) armTimeout(slot, waiting)
      return
    }
    if (message.type === 'log') {
      // Cut in the worker already (worker.ts); again here for a line the handler posted itself.
      logger[message.level]({ function: name, request_id: message.requestId, trace_id: message.traceId ?? null, ...(message.stream ? { stream: message.stream } : {}) }, cutLine(message.text))
      return
    }
    const pending = slot.pending
    if (pending === null || pending.id !== message.id) return
    if (message.type === 'result') {
      const problem = postedResponseProblem(message.response)
      if (problem === null) settle(slot, pending, message.response)
      else {
        logger.error({ function: name, ...logFields(pending.request) }, `function ${name} posted a response that is not valid: ${problem}`)
        settle(slot, pending, new GatewayError('function_error', { detail: `Function "${name}" returned a response that is not valid: ${problem}.` }))
      }
    } else {
      logFailure(pending.request, message.phase, message.error)
      settle(slot, pending, new GatewayError('function_error', { detail: failureDetail(message.phase, message.error) }))
      if (message.phase === 'init') return dropWorker(slot, worker)
    }
    if (message.usedBytes > memoryBytes) replaceOverMemory(slot, worker, pending.request, message.usedBytes)
  }

  /**
   * `memory` bounds a worker's JS heap (resourceLimits), not its Buffers and ArrayBuffers: ten calls
   * keeping 32 MB each grew the gateway by 365 MB at `memory: 64MB` (probe finding). So the worker
   * says what it holds after each invocation, and one over `memory` is replaced once it has answered.
   */
  function replaceOverMemory(slot: PoolSlot, worker: Worker, request: InvokedFor, used: number): void {
    logger.warn({ function: name, ...logFields(request), used_mb: Math.round(used / 1_048_576), memory_mb: config.memory }, `function ${name} holds more than its memory (${config.memory}MB, Buffers included) after an invocation: its worker was replaced`)
    replaceWorker(slot, worker)
  }

  /** An idle worker replaced: the new one started first, so the old one's exit is no longer this slot's. */
  function replaceWorker(slot: PoolSlot, worker: Worker): void {
    if (slot.worker === worker && !closing) start(slot)
    void terminateThread(worker, `function ${name}`)
  }

  /**
   * A worker whose module could not be loaded keeps that failure: it answered every later call 502,
   * also once the file was back (one started while a deploy replaced it; a probe). Lambda discards
   * such an environment: the next call starts a worker that loads the module again (one start a
   * call while it cannot be loaded, never a loop).
   */
  function dropWorker(slot: PoolSlot, worker: Worker): void {
    if (slot.worker === worker) slot.worker = null
    void terminateThread(worker, `function ${name}`)
  }

  /** The stack goes to the log, with the request id the client got; never to the client. */
  function logFailure(request: InvokedFor, phase: FailurePhase, error: FailureDetails): void {
    const err = asError(error)
    const what = {
      init: `function ${name} could not be loaded`,
      handler: `function ${name} threw`,
      response: `function ${name} returned a malformed response`,
      oversized: `function ${name} answered more than ${MAX_ANSWER_BYTES} bytes: its answer was refused`,
    }[phase]
    logger.error({ function: name, ...logFields(request), err }, what)
  }

  function failureDetail(phase: FailurePhase, error: FailureDetails): string {
    // Cut again: a handler can post its own `failed` past the worker's cut.
    if (phase === 'response') return `Function "${name}" returned a response that is not valid: ${cutLine(error.message)}.`
    if (phase === 'oversized') return `Function "${name}" answered more than ${MAX_ANSWER_BYTES} bytes (6 MB), the most a function may answer: Lambda's limit for a synchronous invocation's response.`
    return `Function "${name}" failed. The gateway's log has the error under this request id.`
  }

  /** The invocation's clock: the function's timeout once its worker has loaded the module, else the load's. */
  function armTimeout(slot: PoolSlot, pending: Pending): void {
    clearTimeout(pending.timer)
    pending.timer = setTimeout(() => timedOut(slot, pending), slot.loaded || pending.loadOverran ? config.timeout : LOAD_TIMEOUT_MS)
  }

  function timedOut(slot: PoolSlot, pending: Pending): void {
    if (slot.pending !== pending) return
    const worker = slot.worker
    const loading = !slot.loaded
    if (loading && !pending.loadOverran) {
      pending.loadOverran = true
      logger.warn({ function: name, ...logFields(pending.request), timeout_ms: config.timeout }, `function ${name} is still loading its module after ${LOAD_TIMEOUT_MS}ms: its invocation waits up to its timeout more`)
      armTimeout(slot, pending)
      return
    }
    logger.warn({ function: name, ...logFields(pending.request), timeout_ms: loading ? LOAD_TIMEOUT_MS + config.timeout : config.timeout }, loading ? `function ${name} did not load its module in time: its worker was terminated and replaced` : `function ${name} timed out: its worker was terminated and replaced`)
    const detail = loading ? `Function "${name}" did not load within ${LOAD_TIMEOUT_MS + config.timeout}ms: its module's top level did not finish.` : `Function "${name}" did not finish within ${config.timeout}ms.`
    settle(slot, pending, new GatewayError('function_timeout', { detail }))
    // Before terminating: the old worker's exit is then no longer this slot's. Not in a closing pool
    // (a reload's retirement, a shutdown): a new worker would load the module as it is on disk now,
    // only to be stopped, or outlive a close already past its workers (the functions probe).
    if (!closing) start(slot)
    if (worker) void terminateThread(worker, `function ${name}`).then((ended) => {
      logUnfinished(worker, pending.request) // read once it has stopped writing, or is held in a system call
      if (ended) return
      // V8 stops a loop, not a system call: the thread and its memory stay until it returns.
      held++
      worker.once('exit', () => held--)
      logger.error({ function: name, ...logFields(pending.request) }, `function ${name}: its timed-out worker is held in a system call (a read of a hung file system?) and cannot be stopped; it counts against the function's concurrency until it returns`)
    })
  }

  /**
   * What the handler of a call its worker did not finish (a timeout, a crash) left unfinished on its
   * stdout or stderr: the worker logs it when a call ends, which that one never did. Often the line
   * that says where it was stuck (`connecting…`).
   */
  function logUnfinished(worker: Worker, request: InvokedFor): void {
    const lines = unfinished.get(worker)
    if (lines === undefined) return
    unfinished.delete(worker) // once: a timed-out worker's exit comes after
    for (const stream of ['stdout', 'stderr'] as const) {
      const text = unfinishedLine(lines[stream])
      if (text !== '') logger[stream === 'stdout' ? 'info' : 'warn']({ function: name, ...logFields(request), stream }, cutLine(text))
    }
  }

  /** An invocation whose worker the pool's close stopped. */
  function stopped(slot: PoolSlot, pending: Pending): void {
    logger.warn({ function: name, ...logFields(pending.request) }, `function ${name} was stopped before it answered: the gateway is shutting down, or a reload replaced it, and server.shutdown_timeout has passed`)
    settle(slot, pending, new GatewayError('function_error', { detail: `Function "${name}" was stopped before it answered: the gateway is shutting down, or a reload replaced the function, and server.shutdown_timeout has passed.` }))
  }

  function settle(slot: PoolSlot, pending: Pending, outcome: FunctionResponse | GatewayError): void {
    clearTimeout(pending.timer)
    slot.pending = null
    release(slot)
    if (outcome instanceof GatewayError) pending.reject(outcome)
    else pending.resolve(outcome)
  }

  function release(slot: PoolSlot): void {
    idle.push(slot)
    inFlight--
    if (inFlight === 0) drained?.()
  }

  if (background !== null && !waitingForSecrets) for (const slot of slots) start(slot)

  return {
    name,
    concurrency: config.concurrency,
    timeoutMs: config.timeout,
    memoryMb: config.memory,
    get held() {
      return held
    },
    get inFlight() {
      return inFlight
    },
    get closed() {
      return closing
    },
    take() {
      if (closing || inFlight + held >= config.concurrency) return null
      const slot = idle.pop()
      if (slot === undefined) return null
      inFlight++
      // Started before a secret in its environment took a new value (a rotation).
      if (slot.worker !== null && slot.startedWith !== environmentText) replaceWorker(slot, slot.worker)
      return slot
    },
    run(slot, event, request) {
      const worker = slot.worker ?? start(slot)
      return new Promise<FunctionResponse>((resolve, reject) => {
        const id = ++nextId
        const pending: Pending = { id, request, resolve, reject, timer: undefined, loadOverran: false }
        armTimeout(slot, pending)
        slot.pending = pending
        worker.postMessage({ id, event, timeoutMs: config.timeout, requestId: request.requestId, traceId: request.traceId } satisfies Invoke)
      })
    },
    giveBack: release,
    loaded,
    applySecrets(resolve) {
      if (!namesSecrets) return
      env = workerEnvironment(config, resolve)
      environmentText = JSON.stringify(env)
      if (!waitingForSecrets || background === null) return
      waitingForSecrets = false
      for (const slot of slots) start(slot)
    },
    async close(options = {}) {
      closing = true
      if (options.finishFirst && inFlight > 0) await new Promise<void>((resolve) => (drained = resolve))
      // Called once requests have had server.shutdown_timeout (a shutdown, or a reload that replaced
      // this pool's config and whose old requests have ended or had their time): an invocation still
      // running is stopped, not waited for. Waiting held a SIGTERM'd gateway until the function's
      // timeout, far past shutdown_timeout, for clients it had cut off already (probe finding).
      // Its invocation fails once the worker has exited (a shutdown has cut its client's connection
      // by then, which the request's record says), or when terminating it gave up.
      await Promise.all(slots.map(async (slot) => {
        const worker = slot.worker
        if (worker === null) return
        stopping.add(worker)
        // Bounded: a worker held in a system call never ends (telemetry/held-threads.ts).
        const ended = await terminateThread(worker, `function ${name}`)
        if (!ended && slot.pending !== null) stopped(slot, slot.pending)
      }))
    },
  }
}

const LOG_LEVELS: ReadonlySet<unknown> = new Set(['debug', 'info', 'warn', 'error'])
const PHASES: ReadonlySet<unknown> = new Set(['init', 'handler', 'response', 'oversized'] satisfies FailurePhase[])

/**
 * What a worker posted, if it is one of the messages worker.ts sends (its response is checked
 * apart, postedResponseProblem); null otherwise. A handler can post on its worker's port itself:
 * postMessage(null) or a log line with no text made the gateway's thread throw (probe finding).
 */
function workerMessage(posted: unknown): FromWorker | null {
  if (typeof posted !== 'object' || posted === null) return null
  const message = posted as Record<string, unknown>
  switch (message.type) {
    case 'log':
      return LOG_LEVELS.has(message.level) && typeof message.text === 'string' && (message.requestId === null || typeof message.requestId === 'string') && (message.traceId === undefined || message.traceId === null || typeof message.traceId === 'string') && (message.stream === undefined || message.stream === 'stdout' || message.stream === 'stderr') ? (posted as FromWorker) : null
    case 'loaded':
      return message.error === null || isFailureDetails(message.error) ? (posted as FromWorker) : null
    case 'result':
      return typeof message.id === 'number' && typeof message.usedBytes === 'number' ? (posted as FromWorker) : null
    case 'failed':
      return typeof message.id === 'number' && typeof message.usedBytes === 'number' && PHASES.has(message.phase) && isFailureDetails(message.error) ? (posted as FromWorker) : null
    default:
      return null
  }
}

function isFailureDetails(error: unknown): error is FailureDetails {
  if (typeof error !== 'object' || error === null) return false
  const { name, message, stack } = error as Record<string, unknown>
  return typeof name === 'string' && typeof message === 'string' && (stack === undefined || typeof stack === 'string')
}

/** A worker's error as an Error again, so the log shows its type, message and stack. */
function asError(error: FailureDetails): Error {
  const [message, kind] = [cutLine(error.message), cutLine(error.name)] // cut in the worker, unless the handler posted it
  return Object.assign(new Error(message), { name: kind, stack: error.stack === undefined ? `${kind}: ${message}` : cutLine(error.stack) })
}

/**
 * Handed on from the gateway: what a program expects to find, not the gateway's secrets
 * (BOUNCER_MASTER_KEY, BOUNCER_SECRET_*). A convenience, not a barrier: a worker thread shares the
 * gateway's process, so a handler can still read its environment as started (/proc/self/environ)
 * and its files. Function modules are trusted code (README "Functions"; probe finding).
 */
const INHERITED = ['PATH', 'LANG', 'TZ']

/**
 * The handler's process.env: the function's `environment` (its `${secret:NAME}` by `resolve`) and
 * what Lambda sets about the function (AWS_LAMBDA_FUNCTION_NAME, …), as in a Lambda environment;
 * of the gateway's own, only INHERITED.
 */
function workerEnvironment(config: FunctionConfig, resolve: (template: string) => string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of INHERITED) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  env.AWS_LAMBDA_FUNCTION_NAME = config.name
  env.AWS_LAMBDA_FUNCTION_VERSION = '$LATEST'
  env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE = String(config.memory)
  for (const [variable, template] of Object.entries(config.environment)) env[variable] = resolve(template)
  return env
}

/** A worker's stdout or stderr as log lines (the stream must be read, or it would buffer without bound). */
function logLines(stream: Readable, emit: (line: string) => void): void {
  let partial = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() as string
    if (partial.length > MAX_LOG_LINE) {
      lines.push(partial)
      partial = ''
    }
    for (const line of lines) if (line !== '') emit(line.slice(0, MAX_LOG_LINE))
  })
  stream.on('end', () => {
    if (partial !== '') emit(partial.slice(0, MAX_LOG_LINE))
  })
}
