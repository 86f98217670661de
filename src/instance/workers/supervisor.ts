// server.workers > 1: the primary. It serves no gateway requests itself; it starts N worker threads
// (thread.ts), each a whole gateway on the one port by SO_REUSEPORT, so the kernel spreads new
// connections over them; it holds the limits table they share; it keeps the admin listener, which
// speaks for the whole gateway (merged /metrics and /readyz, reload to every worker, the rest of
// /api/* answered by a worker over its private socket); it sends SIGHUP's reload and SIGTERM's
// drain to every worker; and it replaces a worker that ends on its own (a crash) while the others
// keep their connections.
//
// Threads, not processes: one table in a SharedArrayBuffer keeps every limit exact across workers
// with a lock held for a microsecond, where processes would need a round trip to an owner per
// request; a thread's crash (an uncaught exception, its heap limit) still ends only that thread.
// What a thread cannot survive is what ends the process (a native crash, the process's memory).
import { mkdtempSync, rmSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { requestWorkerLimits } from './young-generation.ts'
import { randomBytes, randomUUID } from 'node:crypto'
import { endedSessions } from '../../agents/index.ts'
import { ADMIN_CLIENT_HEADER, ADMIN_MAX_CONNECTIONS, adminClientOf, adminListenerOptions, shownAdminPath, type Catalog } from '../../admin/index.ts'
import { releaseAuditSpills, type AuditHead } from '../../audit/index.ts'
import { listenUrl, readConfigFile, startSettingsOf, type Config } from '../../config/index.ts'
import { asGatewayError, GatewayError, parserRefusal, sendProblem, sendRawProblem } from '../../errors/index.ts'
import { createSharedLimitsTable, releaseLockOf } from '../../limits/index.ts'
// HELD_THREAD_GRACE_MS: how long a thread cut short may take to end before the shutdown, or a failed
// start, goes on without it (terminate() stops JavaScript, not a system call).
import { BACKGROUND_TASKS, createBackgroundTasks, createHeapMetrics, droppedLogLines, HELD_THREAD_GRACE_MS, terminateThread, writeRelayedLine, type BackgroundTask, type BackgroundTasks, type Logger } from '../../telemetry/index.ts'
import { apiKeyRevocations as createApiKeyRevocations, keyWithdrawals as createKeyWithdrawals } from '../../identity/index.ts'
import { releaseKeyStoreLockOf, SecretsError } from '../../secrets/index.ts'
import { releaseWorkerInFlight, workersInFlightTable } from '../../upstream/index.ts'
import { listen } from '../listen.ts'
import { ownKeyStore } from '../own-keys.ts'
import { claimAuditSpills, ConfigError, diagnosticLines } from '../prepare.ts'
import { reloadRefusedCheck } from '../readiness.ts'
import type { ReloadResult } from '../reload.ts'
import type { FromThread, ThreadData, ToThread } from './messages.ts'
import { ask, askEach, pickHeaders, pipeTo, refusedConnection, WorkerSilent, type Answer, type Asked } from './worker-admin.ts'
import { addToCounter, carry, mergeMetrics, parseMetrics, type Families } from './metrics-merge.ts'
import { mergeCatalogs } from './catalog-merge.ts'
import { MIGRATE_REQ_SYSCTL, queuedConnectionsWarning } from './queued-connections.ts'
import { nodeHttp } from '../../http/index.ts'

const { createServer } = nodeHttp // not imported: http/node-http.ts says why

const THREAD_URL = new URL(import.meta.url.endsWith('.ts') ? './thread.ts' : './thread.js', import.meta.url)
/** A drain that has not ended the thread this long past shutdown_timeout is cut short. */
const HARD_STOP_MARGIN_MS = 5_000
/** A replacement waits this long after a crash, doubling while crashes follow each other (to 5 s). */
const FIRST_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 5_000

export interface WorkersOptions {
  configFile: string
  /** The file as `config` was loaded from it: what every worker starts from. */
  configText: string
  config: Config
  count: number
  port?: number
  adminPort?: number
  logger: Logger
  env: NodeJS.ProcessEnv
}

export interface Workers {
  readonly url: string
  readonly adminUrl: string
  readonly logger: Logger
  readonly background: BackgroundTasks
  reload(): Promise<ReloadResult>
  /** server.shutdown_timeout in force: the config's, then what the last reload set. */
  shutdownTimeout(): number
  shutdown(): Promise<ShutdownOutcome>
}

/**
 * A start that failed and could not end every worker it had started: threads held in a system call,
 * which Node's exit would wait to join for ever. `cause` is why the start failed.
 */
export class StartLeftHeldWorkers extends Error {
  readonly heldWorkers: string[]
  constructor(cause: unknown, heldWorkers: string[]) {
    super(cause instanceof Error ? cause.message : String(cause), { cause })
    this.name = 'StartLeftHeldWorkers'
    this.heldWorkers = heldWorkers
  }
}

/** What a shutdown could not stop: worker threads held in a system call, which the process must end without. */
export interface ShutdownOutcome {
  heldWorkers: string[]
}

type SlotState = 'starting' | 'running' | 'draining' | 'stopped'

const noop = () => {}

/**
 * How long /metrics and /readyz wait for one worker: well inside Prometheus' default 10 s scrape
 * timeout and a probe's usual 1–5 s, for the whole answer, since the workers are asked together.
 */
const WORKER_SCRAPE_MS = 2_000

/**
 * How long GET /api/catalog and GET /api/audit/head wait for each worker (asked together): the
 * catalog reads the last hour's refusals from the audit log besides the worker's own state, so more
 * than a probe's bound. A worker that has not answered by then is shown as not answering: the
 * console waited 10 s for a busy one, then left it out.
 */
const WORKER_ADMIN_READ_MS = 5_000

/** How often the watchdog pings the running workers (server.worker_stall_timeout is at least 1 s). */
const WATCHDOG_INTERVAL_MS = 1_000
/** A running worker silent this long (three pings unanswered) is asked last by the admin API. */
const SILENT_AFTER_MS = 3 * WATCHDOG_INTERVAL_MS

/** A step's answer; a stage's says which TLS files (certificate, CRLs) the worker would install. */
type StepResult = ReloadResult & { tlsFiles?: string | null }

interface Slot {
  id: string
  /** Its column of the upstreams' in-flight table: a replacement takes the same one. */
  column: number
  socket: string
  thread: Worker | null
  state: SlotState
  /** performance.now() at its start: the watchdog's times are monotonic (a wall clock stepped back hid a stall). */
  startedAt: number
  restarts: number
  /** The config text it runs: given at its start, then each reload it committed. */
  text: string
  /** The TLS ticket keys it runs, likewise (a reload may change them and not the text: a renewal). */
  ticketKeys: Buffer | null
  /** The generation it runs, likewise. */
  generation: number
  /** Crashes in a row, for the backoff (a worker that ran a minute starts again at once). */
  streak: number
  threadId: number | null
  /** Its /metrics as last scraped: what it leaves behind if it stops. */
  lastMetrics: Families | null
  reloads: Map<number, (result: StepResult) => void>
  exited: Promise<void> | null
  /** Resolved when its thread, cut short, has not ended either: held in a system call. */
  held: PromiseWithResolvers<void>
  /** When a draining worker is stopped if it has not ended: its own shutdown_timeout + 5 s. */
  hardStop: NodeJS.Timeout | null
  /** When its event loop last answered the primary (ready, or a `pong`), on performance.now(): the watchdog's reading. */
  answeredAt: number
}

export async function startWorkers(options: WorkersOptions): Promise<Workers> {
  const { config, logger } = options
  // Before any worker's audit starts: what another number of workers (or one process) spilled is w1's to replay.
  claimAuditSpills(config.audit, options.count, logger)
  const queuedWarning = queuedConnectionsWarning()
  if (queuedWarning !== null) logger.warn({ sysctl: MIGRATE_REQ_SYSCTL }, queuedWarning)
  const failures = new Map<BackgroundTask, number>()
  const background = createBackgroundTasks(logger, { backgroundFailed: (task) => failures.set(task, (failures.get(task) ?? 0) + 1) })
  const maxKeys = config.limits_store.type === 'memory' ? config.limits_store.max_keys : 100_000
  const sharedLimits = createSharedLimitsTable(maxKeys)
  const sharedKeys = ownKeyStore({ forWorkers: true }).buffer
  const apiKeyRevocations = createApiKeyRevocations()
  const keyWithdrawals = createKeyWithdrawals()
  const mcpEndedSessions = endedSessions().buffer
  const upstreamInFlight = workersInFlightTable(options.count)
  const sockets = socketsDirectory(options.count)
  const slots: Slot[] = Array.from({ length: options.count }, (_, i) => ({
    id: `w${i + 1}`, column: i, socket: join(sockets, `w${i + 1}.sock`), thread: null, state: 'stopped', startedAt: 0, restarts: 0, streak: 0, text: options.configText, ticketKeys: null, generation: 1,
    threadId: null, lastMetrics: null, reloads: new Map(), exited: null, held: Promise.withResolvers(), hardStop: null, answeredAt: 0,
  }))
  const carried: Families = new Map()
  /** The primary thread's own heap series, summed with the workers'. */
  const primaryHeap = createHeapMetrics()
  let shutdownTimeoutMs = config.server.shutdown_timeout
  /** server.worker_stall_timeout as the last reload committed it. */
  let stallTimeoutMs = config.server.worker_stall_timeout
  let port = options.port ?? config.server.listen.port
  let url = ''
  let stopping = false
  let nextReload = 1
  /** The config every worker runs: the file as the process started, then each reload's. */
  let configText = options.configText
  const startSettings = startSettingsOf(config)
  /** TLS session ticket keys in force: every worker's (role.ts), new with each reload. */
  let ticketKeys = randomBytes(48)
  /**
   * The generation of the config in force (Runtime.generation): 1, then one more with each reload
   * committed. Every worker is given it, a replacement too: counted in each thread, a replaced first
   * worker said 1 beside the others' 3, and POST /api/reload answered whichever worker's count.
   */
  let generation = 1

  /** Starts a worker; resolves when it listens, rejects with why it could not start. */
  function start(slot: Slot): Promise<void> {
    slot.text = configText
    slot.ticketKeys = ticketKeys
    slot.generation = generation
    const auditOutstanding = new Int32Array(new SharedArrayBuffer(4))
    const data: ThreadData = { configFile: options.configFile, configText, startSettings, replacement: slot.restarts > 0, port, role: { id: slot.id, workers: options.count, sharedLimits, sharedKeys, apiKeyRevocations, keyWithdrawals, mcpEndedSessions, upstreamInFlight: { buffer: upstreamInFlight, column: slot.column }, adminSocket: slot.socket, ticketKeys, auditOutstanding, generation }, env: options.env }
    rmSync(slot.socket, { force: true })
    const thread = new Worker(THREAD_URL, { workerData: data, env: options.env, name: `bouncer ${slot.id}`, resourceLimits: requestWorkerLimits() })
    slot.thread = thread
    slot.state = 'starting'
    slot.threadId = thread.threadId
    const threadId = thread.threadId
    let ready: (() => void) | null = null
    let failed: ((err: Error) => void) | null = null
    const started = new Promise<void>((resolve, reject) => {
      ready = resolve
      failed = reject
    })
    thread.on('message', (message: FromThread) => {
      switch (message.type) {
        case 'ready':
          slot.state = 'running'
          slot.startedAt = performance.now()
          slot.answeredAt = slot.startedAt
          if (url === '') {
            url = message.url
            port = message.port // --port 0: the first worker's port is every worker's
          }
          logger.info({ worker: slot.id, thread: thread.threadId }, 'worker listening')
          ready?.()
          break
        case 'failed':
          // Rebuilt as serve tells them apart: a locked secrets store was "internal error" under workers.
          failed?.(message.lines ? new ConfigError(message.lines)
            : message.secrets ? new SecretsError(message.message)
            : Object.assign(new Error(message.message), { code: message.code ?? undefined }))
          break
        case 'draining':
          // On its own (an uncaught exception) or told to: no longer one that serves, reloads or
          // answers /readyz for the gateway. It drains by its own config's timeout, whichever reload
          // set it: the bound follows.
          if (slot.state === 'running') slot.state = 'draining'
          armHardStop(slot, thread, message.shutdownTimeoutMs)
          break
        case 'reload-asked': {
          // Its files changed, or its admin API let a caller in as a single gateway would: the reload is every worker's.
          const answer = (result: ReloadResult) => thread.postMessage({ type: 'reload-done', id: message.id, result } satisfies ToThread)
          void background.run('reload', () => reload().then(answer, (err: unknown) => {
            answer({ ok: false, errors: [`the reload failed: ${(err as Error).message}`] })
            throw err
          }))
          break
        }
        case 'staged':
          slot.reloads.get(message.id)?.({ ...message.result, tlsFiles: message.tlsFiles })
          slot.reloads.delete(message.id)
          break
        case 'pong':
          slot.answeredAt = performance.now()
          break
        case 'log':
          writeRelayedLine(logger, message.line)
          break
        case 'reloaded':
          if (message.result.ok) {
            shutdownTimeoutMs = message.shutdownTimeoutMs
            stallTimeoutMs = message.stallTimeoutMs
          }
          slot.reloads.get(message.id)?.(message.result)
          slot.reloads.delete(message.id)
          break
      }
    })
    thread.on('error', (err) => logger.error({ err, worker: slot.id }, 'worker failed'))
    slot.held = Promise.withResolvers() // a thread given up on that ended after all: its replacement is not
    // Not events.once: it rejects on an 'error' event, which a thread ended by its heap limit or by
    // an exception no handler of its own saw emits before 'exit', and that exit was then never seen.
    slot.exited = new Promise<number>((resolve) => thread.once('exit', resolve)).then((code) => {
      failed?.(new Error(`worker ${slot.id} ended with code ${code} before it listened`)) // a no-op once it did
      exited(slot, thread, threadId, code, Atomics.load(auditOutstanding, 0))
    })
    return started
  }

  /** `unwritten`: records its audit log had taken and no sink had (none after a drain). */
  function exited(slot: Slot, thread: Worker, threadId: number, code: number, unwritten: number): void {
    if (unwritten > 0) {
      // Ended without draining (its heap limit, a hard stop): its queued records went with it.
      addToCounter(carried, 'bouncer_audit_dropped_total', unwritten)
      logger.error({ worker: slot.id, lost: unwritten }, 'audit records lost: the worker ended before its audit log wrote them (counted in bouncer_audit_dropped_total)')
    }
    // A thread stopped inside a limits check or a key store read (the hard stop runs no finally)
    // still holds that lock: every other worker would wait for it for ever.
    if (releaseLockOf(sharedLimits, threadId)) logger.warn({ worker: slot.id }, 'the worker stopped inside a limits check: its lock on the shared table is released')
    if (releaseKeyStoreLockOf(sharedKeys, threadId)) logger.warn({ worker: slot.id }, 'the worker stopped while reading the key store: its lock is released')
    if (slot.thread !== thread) return
    // Requests it ended without finishing (no drain: an uncaught exception no handler saw, its heap
    // limit, a hard stop) held places under their upstreams' max_concurrent for good: given back,
    // before its replacement, which takes the same column, starts (only the slot's own thread: a
    // replacement starts once it has ended).
    const held = releaseWorkerInFlight(upstreamInFlight, slot.column)
    if (held > 0) logger.warn({ worker: slot.id, requests: held }, 'the worker stopped with upstream requests in flight: their places under max_concurrent are given back')
    const wasRunning = slot.state === 'running' || slot.state === 'draining'
    slot.thread = null
    slot.threadId = null
    for (const done of slot.reloads.values()) done({ ok: false, errors: [`worker ${slot.id} stopped during the reload`] })
    slot.reloads.clear()
    if (slot.lastMetrics) carry(carried, slot.lastMetrics)
    slot.lastMetrics = null
    if (stopping) {
      slot.state = 'stopped'
      return
    }
    // Ended on its own (a crash), or was stopped to be replaced: a new one takes its place.
    slot.state = 'stopped'
    slot.restarts++
    slot.streak = wasRunning && performance.now() - slot.startedAt > 60_000 ? 1 : slot.streak + 1
    const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (slot.streak - 1))
    logger.error({ worker: slot.id, code, restart_in_ms: delay }, 'worker stopped: starting a replacement')
    setTimeout(() => {
      if (stopping) return
      start(slot).catch((err: unknown) => logger.error({ err, worker: slot.id }, 'the replacement worker could not start'))
    }, delay).unref()
  }

  function running(): Slot[] {
    return slots.filter((s) => s.state === 'running' && s.thread !== null)
  }

  /**
   * The workers whose admin API answers now: the running ones, or while they all drain, the
   * draining ones, as one gateway's admin API answers until its drain ends.
   */
  function answering(): Slot[] {
    const live = running()
    return live.length > 0 || !stopping ? live : slots.filter((s) => s.state === 'draining' && s.thread !== null)
  }

  /** Whether a running worker's event loop has not answered the watchdog for a few of its pings. */
  function silent(slot: Slot, now: number): boolean {
    return slot.state === 'running' && now - slot.answeredAt > SILENT_AFTER_MS
  }

  /**
   * One step of a reload on one worker thread: its answer. A thread that stops meanwhile answers not
   * ok (exited() settles it), and so does one already gone or replaced: a commit posted to no thread
   * (a worker that crashed after staging, in its restart's backoff) waited for ever, and every later
   * reload queued behind it.
   */
  function step(slot: Slot, message: Extract<ToThread, { type: 'stage' | 'commit' }>, thread: Worker | null): Promise<StepResult> {
    if (thread === null || slot.thread !== thread) return Promise.resolve({ ok: false, errors: [`worker ${slot.id} stopped during the reload`] })
    return new Promise((resolve) => {
      slot.reloads.set(message.id, resolve)
      thread.postMessage(message)
    })
  }

  /** Staged and committed on one worker alone. */
  async function reloadOne(slot: Slot, text: string): Promise<ReloadResult> {
    const id = nextReload++
    const thread = slot.thread
    const keys = ticketKeys
    const inForce = generation
    const staged = await step(slot, { type: 'stage', id, text, ticketKeys: keys, generation: inForce }, thread)
    const result = staged.ok ? await step(slot, { type: 'commit', id }, thread) : staged
    if (result.ok && slot.thread === thread) {
      slot.text = text
      slot.ticketKeys = keys
      slot.generation = inForce
    }
    return result
  }

  /**
   * Brings the config in force, and the TLS ticket keys, to each worker that does not run them: one
   * started while a reload was staged (given those before it), or one whose commit failed (its
   * staged reload lapsed). A renewal's reload changes the keys and not the text: both are compared. Not
   * awaited: a start can take as long as its config's secrets store does (its port holds the
   * message until it listens). One that cannot take it (a file it names gone meanwhile, a store that
   * failed) is drained and replaced, as its replacement starts from the config in force: left as it
   * was, it served the config before the reload, perhaps looser access rules, until another reload
   * (a review found it).
   */
  function reconcile(): void {
    for (const slot of slots) {
      const thread = slot.thread
      if (thread === null || (slot.text === configText && slot.ticketKeys === ticketKeys && slot.generation === generation) || (slot.state !== 'starting' && slot.state !== 'running')) continue
      void reloadOne(slot, configText).then((result) => {
        if (result.ok || slot.thread !== thread || stopping) return
        logger.error({ worker: slot.id, errors: result.errors }, 'a worker could not take the config in force: replacing it')
        stopWorker(slot, true)
      })
    }
  }

  let queued: Promise<ReloadResult> | null = null
  let turn: Promise<unknown> = Promise.resolve()
  /**
   * A reload this primary refused itself, until one succeeds: a file it could not read (no worker
   * was asked, so none said so), or TLS files that changed while the workers read them. /readyz and
   * bouncer_config_reload_refused say it, as a worker's own refusal does (a probe found them silent).
   */
  let refusedHere: { at: string; problems: number } | null = null
  const refuse = (errors: string[]): ReloadResult => {
    refusedHere = { at: new Date().toISOString(), problems: errors.length }
    return { ok: false, errors }
  }
  /** Requests made while one runs (SIGHUP, the admin API, the first worker seeing the files change) share the next. */
  function reload(): Promise<ReloadResult> {
    if (queued) return queued
    const next = turn.then(noop, noop).then(() => {
      queued = null
      return reloadAll()
    })
    turn = next
    queued = next
    return next
  }

  /**
   * The primary reads the file once and every running worker prepares that text; only when all
   * have (a worker that stopped meanwhile aside) is it swapped in on all, else it is aborted on all
   * and the answer is the first refusal: a file that changes during the reload, or a key being
   * rewritten, is never in force on some workers and not others.
   */
  async function reloadAll(): Promise<ReloadResult> {
    const text = await readConfigFile(options.configFile)
    if (typeof text !== 'string') {
      const errors = diagnosticLines(text, 'error')
      logger.error({ errors }, 'config reload refused: the running config keeps serving')
      return refuse(errors)
    }
    const live = running()
    if (live.length === 0) return { ok: false, errors: ['no worker is running (a replacement is starting)'] }
    const id = nextReload++
    const threads = live.map((slot) => slot.thread)
    // New ticket keys with each reload, as one process's new context makes: no session made under
    // the CAs before it resumes.
    const nextTicketKeys = randomBytes(48)
    const nextGeneration = generation + 1
    const staged = await Promise.all(live.map((slot, i) => step(slot, { type: 'stage', id, text, ticketKeys: nextTicketKeys, generation: nextGeneration }, threads[i] ?? null)))
    // A worker that stopped or began to drain meanwhile (a crash, or reconcile replacing it) has no
    // say: its replacement starts from the config in force. Its answer once refused the reload on
    // every worker, and the edit waited for another reload (a review).
    const present = live.map((slot, i) => slot.thread === threads[i] && slot.state === 'running')
    const voters = live.filter((_, i) => present[i] && staged[i]?.ok)
    // Each worker read the TLS files while it prepared: a renewal written between two of them would
    // install two certificates, or two CRLs (a certificate revoked on one worker, let in by another).
    // Refused: the renewal's own change asks for another reload. Not the primary reading them once
    // for all: where the files are is the config's, which the primary does not load, and each worker
    // reads client_crl in its check, its listener and its compile.
    const tlsFiles = new Set(live.flatMap((_, i) => (present[i] && staged[i]?.ok ? [staged[i].tlsFiles ?? null] : [])))
    const split: ReloadResult | undefined = tlsFiles.size > 1 ? { ok: false, errors: ['the TLS files changed while the workers read them (a certificate or a CRL being renewed): reload again'] } : undefined
    const refused = staged.find((result, i) => present[i] && !result.ok) ?? split
    if (refused || voters.length === 0) {
      for (const slot of live) slot.thread?.postMessage({ type: 'abort', id } satisfies ToThread)
      if (staged.some((result) => result.ok)) logger.warn('config reload refused by a worker: not applied on any')
      if (refused === split && split !== undefined) {
        logger.error({ errors: split.errors }, 'config reload refused: the running config keeps serving')
        return refuse(split.errors)
      }
      const first = refused ?? staged.find((result) => !result.ok)
      return first && !first.ok ? { ok: false, errors: first.errors } : { ok: false, errors: ['every worker stopped during the reload'] }
    }
    live.forEach((_, i) => {
      if (!present[i]) threads[i]?.postMessage({ type: 'abort', id } satisfies ToThread)
    })
    const voterThreads = voters.map((slot) => slot.thread)
    const results = await Promise.all(voters.map((slot, i) => step(slot, { type: 'commit', id }, voterThreads[i] ?? null)))
    const done = results.find((result) => result.ok)
    if (!done) return results[0] as ReloadResult
    // In force where it committed: what a worker starting from now on is given, and what one that
    // missed it (starting meanwhile, stopped, or its commit failed) is brought to, or replaced.
    configText = text
    ticketKeys = nextTicketKeys
    generation = nextGeneration
    refusedHere = null
    const missed: string[] = []
    voters.forEach((slot, i) => {
      // The thread that committed: a replacement started since (a crash after the commit) was given
      // the text before it and is brought to it by reconcile (a review).
      if (results[i]?.ok && slot.thread === voterThreads[i]) {
        slot.text = text
        slot.ticketKeys = nextTicketKeys
        slot.generation = nextGeneration
      } else missed.push(slot.id)
    })
    for (const [i, slot] of live.entries()) if (!present[i]) missed.push(slot.id)
    reconcile()
    // In force: the answer says ok, and which workers take it late (it once said not ok).
    return missed.length === 0 ? done : { ...done, warnings: [...done.warnings, `worker ${missed.join(', ')} did not take it at once: brought to it, or replaced`] }
  }

  /** Stops one worker: drained, or at once. */
  function stopWorker(slot: Slot, drain: boolean): void {
    const thread = slot.thread
    if (!thread) return
    if (!drain) {
      void thread.terminate()
      return
    }
    slot.state = 'draining'
    thread.postMessage({ type: 'drain' } satisfies ToThread)
    armHardStop(slot, thread, shutdownTimeoutMs) // until the worker says what its own is
  }

  function armHardStop(slot: Slot, thread: Worker, timeoutMs: number): void {
    if (slot.hardStop) clearTimeout(slot.hardStop)
    slot.hardStop = setTimeout(() => {
      if (slot.thread !== thread) return
      void thread.terminate()
      setTimeout(() => {
        if (slot.thread === thread) slot.held.resolve()
      }, HELD_THREAD_GRACE_MS).unref()
    }, timeoutMs + HARD_STOP_MARGIN_MS)
    slot.hardStop.unref()
  }

  /**
   * The watchdog. The primary answers /healthz, so a worker whose event loop is held (a runaway
   * synchronous task) was never restarted: the connections the kernel gave it hung, and /readyz,
   * ready only while every running worker is, kept the whole instance out of its load balancer for
   * good while its liveness probe passed. Each second every running worker is pinged; one silent for
   * server.worker_stall_timeout is taken out of the serving set and terminated, and replaced as a
   * crashed one is.
   */
  let lastTick = performance.now()
  const watchdog = setInterval(() => {
    if (stopping) return
    const now = performance.now()
    // This thread held up itself (a long GC, a host that gave the process no CPU): its loop runs the
    // timers before it reads the workers' answers that came meanwhile, so it judges at the next tick.
    const late = now - lastTick > 3 * WATCHDOG_INTERVAL_MS
    lastTick = now
    for (const slot of slots) {
      const thread = slot.thread
      if (slot.state !== 'running' || thread === null) continue
      if (late || now - slot.answeredAt <= stallTimeoutMs) thread.postMessage({ type: 'ping' } satisfies ToThread)
      else replaceStalled(slot, thread, now - slot.answeredAt)
    }
  }, WATCHDOG_INTERVAL_MS)
  watchdog.unref()

  function replaceStalled(slot: Slot, thread: Worker, silentMs: number): void {
    logger.error({ worker: slot.id, silent_ms: silentMs, worker_stall_timeout_ms: stallTimeoutMs }, 'worker stalled: its event loop has not answered for server.worker_stall_timeout; replacing it')
    // Out of the serving set at once (/readyz, the admin API's answers); its exit starts the replacement.
    slot.state = 'draining'
    void thread.terminate()
    setTimeout(() => {
      if (slot.thread !== thread) return
      slot.held.resolve()
      logger.error({ worker: slot.id }, 'the stalled worker did not end: its thread is held in a system call')
    }, HELD_THREAD_GRACE_MS).unref()
  }

  // The first worker alone: it creates what the others then share (the audit log's tables, the
  // checkpoint key, the port when it is 0). Then the rest together.
  try {
    await start(slots[0] as Slot)
    await Promise.all(slots.slice(1).map(start))
  } catch (err) {
    stopping = true
    clearInterval(watchdog)
    // A worker still starting may be held in a system call (its master key read from a hung file
    // system): terminate() cannot end it, and waiting for its exit waited for ever.
    const held: string[] = []
    await Promise.all(slots.map(async (slot) => {
      if (slot.thread !== null && !(await terminateThread(slot.thread, `worker ${slot.id}`))) held.push(slot.id)
    }))
    rmSync(sockets, { recursive: true, force: true })
    if (held.length > 0) throw new StartLeftHeldWorkers(err, held)
    throw err
  }

  // Bounded as a single gateway's admin listener is (adminListenerOptions).
  const admin = createServer(adminListenerOptions(config.server), (req, res) => {
    const requestId = randomUUID()
    serveAdmin(req, res).catch((err: unknown) => {
      const error = asGatewayError(err)
      if (error.code === 'internal_error') logger.error({ err: error.cause ?? err, path: shownAdminPath(req.url) }, 'admin request failed')
      sendProblem(res, error, requestId, req.method === 'HEAD')
    })
  })
  // What Node's parser refuses was answered with its bare 431 or 400, no problem body (an
  // adversarial probe). A connection with an answer under way (one passed to a worker) is cut instead.
  admin.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) return void socket.destroy()
    sendRawProblem(socket, parserRefusal(err), randomUUID())
  })
  admin.maxConnections = ADMIN_MAX_CONNECTIONS

  async function serveAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://admin').pathname.replace(/\/+$/, '')
    const method = req.method ?? 'GET'
    if (path === '/metrics' && (method === 'GET' || method === 'HEAD')) return metrics(res)
    if (path === '/readyz' && (method === 'GET' || method === 'HEAD')) return readyz(res)
    // Liveness is this process's, answered here as one gateway answers it: passed to a worker, it
    // was 500 from SIGTERM on (no worker running while they drain), and a kubelet restarted the pod.
    if (path === '/healthz') {
      if (method !== 'GET' && method !== 'HEAD') throw new GatewayError('method_not_allowed', { detail: '/healthz answers GET and HEAD.', headers: { allow: 'GET, HEAD' } })
      return sendJson(res, 200, { status: 'ok' })
    }
    // HEAD too: passed to one worker, its content-length was that worker's answer, not the merged one (a probe).
    if (path === '/api/audit/head' && (method === 'GET' || method === 'HEAD')) return auditHeads(req, res)
    // Each worker's issuers have key sets of their own: the console's catalog shows every worker's.
    if (path === '/api/catalog' && (method === 'GET' || method === 'HEAD')) return catalog(req, res)
    // The rest of /api/*: any worker answers as the gateway would (auth included).
    // POST /api/reload too: the worker's admin API checks the caller exactly as a single gateway
    // does (admin access; a console session's Origin), then asks this primary to reload every
    // worker (`reload-asked`). The primary once let in any credential a worker accepted for a read
    // route, the read-only token too (an adversarial probe).
    // A draining worker whose drain has just ended refuses the connection: the next one answers
    // (a read only, which carries no body that the refused attempt could have taken).
    // A worker that has not answered the watchdog's pings for a few seconds (a long synchronous
    // task, or a stall not yet called at server.worker_stall_timeout) is asked last: first, it held
    // every admin call while the others were idle, up to its replacement (then a 500).
    const now = performance.now()
    const candidates = answering().sort((a, b) => Number(silent(a, now)) - Number(silent(b, now)))
    const retryable = method === 'GET' || method === 'HEAD'
    for (const [i, slot] of candidates.entries()) {
      try {
        await pipeTo(slot, req, res)
        return
      } catch (err) {
        if (!retryable || res.headersSent || !refusedConnection(err) || i === candidates.length - 1) throw err
      }
    }
    throw new GatewayError('internal_error', { detail: 'No worker is running now: a replacement is starting; retry shortly.' })
  }

  /** The first worker's head, as one gateway answers, and every worker's chain under `workers`. */
  async function auditHeads(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // During a drain too: it was a 500 "no worker is running" while the log still took records.
    const live = answering()
    if (live.length === 0) throw new GatewayError('internal_error', { detail: 'No worker is running now: a replacement is starting; retry shortly.' })
    const asked = await askEach(live, '/api/audit/head', credentialsOf(req), WORKER_ADMIN_READ_MS)
    const answered = asked.filter((each): each is Asked<Slot> & { answer: Answer } => each.answer !== null)
    // The top level is the first worker's chain (README); only while they all drain, a worker whose
    // drain ended while it was asked answers nothing, and the first that answers speaks for it. A
    // running first worker that does not answer is an error, not another worker's chain (a review).
    // Whether they drain is read after the asks, from `stopping`, not from the first worker's state:
    // the idle worker's drain ends at once, so a SIGTERM that came during the asks found w1
    // 'running' when it was picked, and a drain that ended during them left it 'stopped' (not
    // 'draining'); either way its missing answer was a 500 "Worker w1 did not answer" while w2,
    // holding a request, had answered (a loaded CI run).
    const first = (stopping ? answered[0] : asked[0])?.answer
    if (!first || first.status !== 200) {
      // The head cannot be read now, which is no fault of the gateway's code: it was a 500 "internal
      // error" behind a worker held in a long task (a probe), which monitoring reads as a bug.
      if (!first) throw new GatewayError('audit_unavailable', { detail: `Worker ${(live[0] as Slot).id}, whose chain heads the answer, did not answer within ${WORKER_ADMIN_READ_MS / 1000} s (busy or stuck: /readyz says whether it serves): retry shortly.`, headers: { 'retry-after': '5' } })
      res.writeHead(first.status, pickHeaders(first.headers))
      res.end(first.body)
      return
    }
    const heads = answered.flatMap(({ slot, answer }) => {
      if (answer.status !== 200) return []
      const { chain, head, checkpoint } = JSON.parse(answer.body) as AuditHead
      return [{ worker: slot.id, chain, head, checkpoint }]
    })
    // A worker that gave no head is named, not left out: its chain took records all the same (a
    // verifier comparing heads would otherwise not know one is missing). So is one not asked, as it
    // is not running (a crashed one's replacement starting, or its restart's backoff): it was left
    // out unnamed (a review). While they all drain, a worker whose drain ended has no more records.
    const unanswered = slots.flatMap((slot) => {
      const each = asked.find((one) => one.slot === slot)
      if (each === undefined) return [{ worker: slot.id, why: `worker ${slot.id} is ${slot.state}, not running (its chain goes on once it runs)` }]
      if (each.why === null || (stopping && !each.answer)) return []
      return [{ worker: slot.id, why: each.why }]
    })
    const merged: AuditHead = { ...(JSON.parse(first.body) as AuditHead), workers: heads }
    if (unanswered.length > 0) merged.workers_unanswered = unanswered
    sendJson(res, 200, merged)
  }

  /** The first worker's catalog, each issuer as its worst worker has it and every worker's state beside it. */
  async function catalog(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const live = answering()
    if (live.length === 0) throw new GatewayError('internal_error', { detail: 'No worker is running now: a replacement is starting; retry shortly.' })
    const asked = await askEach(live, '/api/catalog', credentialsOf(req), WORKER_ADMIN_READ_MS)
    const answered = asked.filter((each): each is Asked<Slot> & { answer: Answer } => each.answer?.status === 200)
    const first = asked.find((each) => each.answer !== null)?.answer
    // Refused (who asks, a console session's Origin) or no worker answered: as one worker answers.
    if (!first || first.status !== 200 || answered.length === 0) {
      if (!first) throw new GatewayError('internal_error', { detail: 'No worker answered.' })
      res.writeHead(first.status, pickHeaders(first.headers))
      res.end(req.method === 'HEAD' ? undefined : first.body)
      return
    }
    const unanswered = asked.flatMap(({ slot, why }) => (why === null ? [] : [{ worker: slot.id, why }]))
    const merged = mergeCatalogs(answered.map(({ slot, answer }) => ({ worker: slot.id, catalog: JSON.parse(answer.body) as Catalog })), unanswered)
    const text = JSON.stringify(merged)
    res.writeHead(200, { ...pickHeaders(first.headers), 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(req.method === 'HEAD' ? undefined : text)
  }

  async function metrics(res: ServerResponse): Promise<void> {
    // A draining worker still counts what it finishes; once it ends, its last series are carried.
    const live = slots.filter((slot) => (slot.state === 'running' || slot.state === 'draining') && slot.thread !== null)
    const texts = await Promise.all(live.map(async (slot) => {
      const answer = await ask(slot, 'GET', '/metrics', undefined, WORKER_SCRAPE_MS).catch(() => null)
      // A worker busy past the bound (a long synchronous read, a CPU-heavy request) is counted as it
      // was last scraped: its counters left out would read as a reset, and rate() would count its
      // whole total again when it answers.
      if (answer?.status !== 200) return slot.lastMetrics
      const families = parseMetrics(answer.body)
      slot.lastMetrics = families
      return families
    }))
    const own = parseMetrics(primaryMetrics() + (await primaryHeap()))
    const body = mergeMetrics([...texts.filter((t): t is Families => t !== null), own], carried)
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }

  function primaryMetrics(): string {
    const byState = new Map<SlotState, number>([['starting', 0], ['running', 0], ['draining', 0], ['stopped', 0]])
    for (const slot of slots) byState.set(slot.state, (byState.get(slot.state) ?? 0) + 1)
    let out = '# HELP bouncer_workers Request-path workers (server.workers) by state.\n# TYPE bouncer_workers gauge\n'
    for (const [state, n] of byState) out += `bouncer_workers{state="${state}"} ${n}\n`
    out += '# HELP bouncer_worker_restarts_total Workers replaced after they stopped on their own (a crash).\n# TYPE bouncer_worker_restarts_total counter\n'
    out += `bouncer_worker_restarts_total ${slots.reduce((n, s) => n + s.restarts, 0)}\n`
    // Only the primary's log queue drops lines (it writes the workers' too): summed with the workers' 0.
    out += `# TYPE bouncer_log_lines_dropped_total counter\nbouncer_log_lines_dropped_total ${droppedLogLines()}\n`
    // Summed with the workers' own (each 1 while its last reload was refused).
    if (refusedHere) out += '# TYPE bouncer_config_reload_refused gauge\nbouncer_config_reload_refused 1\n'
    if (failures.size > 0) {
      out += '# TYPE bouncer_background_failures_total counter\n'
      for (const task of Object.keys(BACKGROUND_TASKS) as BackgroundTask[]) out += `bouncer_background_failures_total{task="${task}"} ${failures.get(task) ?? 0}\n`
    }
    return out
  }

  async function readyz(res: ServerResponse): Promise<void> {
    const checks: Record<string, string> = {}
    let ready = !stopping
    // A worker that gives no answer is said so with the bound waited (it was a bare "not ready"), as
    // the limits store's check says its silence; one that answered not ready says so with its checks.
    const unanswered = (err: unknown) => (err instanceof WorkerSilent ? `not ready: no answer within ${WORKER_SCRAPE_MS} ms` : `not ready: could not be asked: ${(err as Error).message}`)
    const answers = await Promise.all(slots.map((slot) => (slot.state === 'running' ? ask(slot, 'GET', '/readyz', undefined, WORKER_SCRAPE_MS).catch(unanswered) : null)))
    slots.forEach((slot, i) => {
      if (slot.state !== 'running') {
        checks[slot.id] = slot.state
        return
      }
      const answer = answers[i]
      if (typeof answer === 'string' || answer === null || answer === undefined) {
        ready = false
        checks[slot.id] = answer ?? 'not ready'
        return
      }
      const body = JSON.parse(answer.body) as { checks?: Record<string, string> }
      if (answer.status !== 200) ready = false
      checks[slot.id] = answer.status === 200 ? 'ready' : 'not ready'
      for (const [name, value] of Object.entries(body.checks ?? {})) checks[`${slot.id}:${name}`] = value
    })
    // Ready while at least one worker serves: a worker being replaced does not take the port away.
    const serving = running().length
    if (serving === 0) ready = false
    checks.workers = `${serving} of ${slots.length} running`
    if (refusedHere) checks.config = reloadRefusedCheck(refusedHere)
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks })
  }

  let adminAddress: AddressInfo
  try {
    adminAddress = await listen(admin, { host: config.admin.listen.host, port: options.adminPort ?? config.admin.listen.port }, logger, 'admin')
  } catch (err) {
    await stopAll()
    throw err
  }

  /** Drains every worker; answers those whose threads could not be ended (held in a system call). */
  async function stopAll(): Promise<string[]> {
    stopping = true
    clearInterval(watchdog)
    for (const slot of slots) stopWorker(slot, true)
    const held: string[] = []
    await Promise.all(slots.map((slot) => Promise.race([slot.exited, slot.held.promise.then(() => void held.push(slot.id))])))
    rmSync(sockets, { recursive: true, force: true })
    return held // serve says so, and ends the process without them
  }

  return {
    url,
    adminUrl: listenUrl(adminAddress.address, adminAddress.port),
    logger,
    background,
    reload,
    shutdownTimeout: () => shutdownTimeoutMs,
    async shutdown() {
      if (stopping) return { heldWorkers: [] }
      const heldWorkers = await stopAll()
      admin.close()
      admin.closeAllConnections()
      if (heldWorkers.length === 0) releaseAuditSpills(config.audit)
      return { heldWorkers }
    },
  }
}

/** A Unix socket's path holds 108 bytes with its NUL on Linux: a longer one fails to listen (EINVAL). */
const MAX_SOCKET_PATH_BYTES = 107

/**
 * The private directory of the workers' admin sockets: under TMPDIR, or under /tmp when TMPDIR is
 * too long for the longest socket path in it (a deep CI or service directory made every start with
 * workers fail with "listen EINVAL", while one process started). mkdtemp makes it 0700 either way.
 */
function socketsDirectory(workers: number): string {
  const longest = (base: string) => Buffer.byteLength(join(base, 'bouncer-workers-XXXXXX', `w${workers}.sock`))
  const base = longest(tmpdir()) <= MAX_SOCKET_PATH_BYTES ? tmpdir() : '/tmp'
  return mkdtempSync(join(base, 'bouncer-workers-'))
}

/**
 * What a worker needs to know who asks: the bearer token, or the console's session cookie (and the
 * Host it was issued for).
 */
function credentialsOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of ['authorization', 'cookie', 'host'] as const) {
    const value = req.headers[name]
    if (value !== undefined) out[name] = value
  }
  // The worker answers on its Unix socket, which has no peer address: the records it writes name the caller's.
  out[ADMIN_CLIENT_HEADER] = adminClientOf(req)
  return out
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}
