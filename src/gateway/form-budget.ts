// Form POST bodies (and JSON ones, read for their top-level `_method`: a form here too) are held
// whole before anything is forwarded (form-body.ts), each up to server.max_body_bytes: with
// nothing else bounding them, a thousand authorized uploads at once held
// ten gigabytes. A form takes its share of server.form_body_total_bytes before its body is asked
// for (its Content-Length, or max_body_bytes when it is chunked) and gives it back when its request
// ends; a form that does not fit waits its turn in order of arrival, its client's upload waiting in
// TCP meanwhile, within its request_timeout (408) as its body is. While nothing is held, one form is
// let in whatever its size: a total below max_body_bytes slows large uploads, it never refuses them.
// Per process (each worker counts its own), as the response buffer's total is.
import { DeadlineExceeded, withinDeadline } from '../collections/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { RequestContext } from '../request/index.ts'

interface Waiter {
  readonly bytes: number
  readonly admit: () => void
}

let heldBytes = 0
const waiting: Waiter[] = []

/** What the forms being read or forwarded hold now, and how many wait (the tests read them). */
export function formBudget(): { held: number; waiting: number } {
  return { held: heldBytes, waiting: waiting.length }
}

export interface FormShare {
  /** Resolves once the share is held, or once it is given back unheld (the request ended while it waited). */
  readonly ready: Promise<void>
  /** Gives the share back, or leaves the queue: once, whichever came first. */
  release(): void
}

/** A share of `bytes` of the `total`; held at once when it fits and no form waits before it. */
export function takeFormShare(bytes: number, total: number): FormShare {
  let state: 'waiting' | 'held' | 'released' = 'waiting'
  let admitted!: () => void
  const ready = new Promise<void>((resolve) => (admitted = resolve))
  const waiter: Waiter = {
    bytes,
    admit() {
      state = 'held'
      heldBytes += bytes
      admitted()
    },
  }
  if (waiting.length === 0 && fits(bytes, total)) waiter.admit()
  else waiting.push(waiter)
  return {
    ready,
    release() {
      if (state === 'released') return
      if (state === 'held') heldBytes -= bytes
      else waiting.splice(waiting.indexOf(waiter), 1)
      state = 'released'
      admitted()
      admitWaiting(total)
    },
  }
}

function fits(bytes: number, total: number): boolean {
  return heldBytes === 0 || heldBytes + bytes <= total
}

/** The forms at the queue's head that fit now, in order: a large one is not passed by smaller ones behind it. */
function admitWaiting(total: number): void {
  while (waiting.length > 0 && fits((waiting[0] as Waiter).bytes, total)) (waiting.shift() as Waiter).admit()
}

/**
 * A body's share of `total`, held until its request ends (or given back sooner): before its body is
 * asked for, so a body that waits has its upload wait in its client's TCP, not in the gateway. 408
 * when no share is had by the body's deadline, saying so (not the slow upload's words). `maxBytes`:
 * the most this body may be, taken when it declares no length.
 */
export async function bodyShareHeld(ctx: RequestContext, maxBytes: number, total: number): Promise<FormShare> {
  const bytes = Math.min(ctx.headers?.contentLength ?? maxBytes, maxBytes)
  const share = takeFormShare(bytes, total)
  ctx.res.once('close', share.release)
  if (ctx.bodyDeadline === null) {
    await share.ready
    return share
  }
  try {
    await withinDeadline(share.ready, Math.max(0, ctx.bodyDeadline - performance.now()), 'a share of server.form_body_total_bytes', () => {})
  } catch (err) {
    if (err instanceof DeadlineExceeded) {
      throw new GatewayError('request_timeout', { detail: 'Other bodies held whole (form and JSON POSTs, functions\' requests) held all of server.form_body_total_bytes until request_timeout: this one was not read. Try again shortly.' })
    }
    throw err
  }
  return share
}
