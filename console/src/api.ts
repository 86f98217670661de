// The console's one way to the gateway: /api/*, with the admin token as a bearer header or, for a
// person signed in (admin.roles), the listener's HttpOnly session cookie. The token lives in this
// tab's sessionStorage only (gone when the tab closes) and is never put in a cookie or a URL, so
// another site cannot make the browser use it (CSRF), and it never reaches a log. The cookie's
// CSRF guard is the gateway's: a POST must carry this listener's Origin, which fetch sends.
import { signal } from '@preact/signals'
import type { ConsoleCaller, ConsoleSession } from '../../src/admin/console-shapes.ts'

const KEY = 'bouncer.console.token'
export const token = signal<string | null>(sessionStorage.getItem(KEY))
export const session = signal<ConsoleCaller | null>(null)
/** Why the gateway refused who signed in (403 no_role: none of admin.roles), shown on the sign-in page. */
export const refusal = signal<string | null>(null)
/** Where a person signs in, when the gateway offers it (a 401's X-Bouncer-Sign-In). */
export const signInPath = signal<string | null>(null)
/**
 * The credential that was in use stopped being accepted: a person's session ended (idle, revoked,
 * expired), or an admin token was changed or removed by a reload. The sign-in page says which.
 */
export const ended = signal<'session' | 'token' | null>(null)
/** Where a person refused (403) signs out, to sign in as someone else: their cookie would keep them refused. */
export const refusedSignOut = signal<string | null>(null)

export class ApiError extends Error {
  readonly status: number
  readonly code: string | null
  /** A 401 whose challenge says the token sent is not valid (error="invalid_token"), not that none could be (the admin API disabled). */
  readonly invalidToken: boolean
  constructor(message: string, status: number, code: string | null, invalidToken = false) {
    super(message)
    this.status = status
    this.code = code
    this.invalidToken = invalidToken
  }
}

/** Forgets the credential in this tab (an expired one included): the sign-in page shows. */
export function forget(): void {
  sessionStorage.removeItem(KEY)
  token.value = null
  session.value = null
}

/**
 * A person's session ends at the gateway, then the sign-in page shows; a token is forgotten. fetch,
 * not a form: the page's no-referrer policy makes a form's POST say `Origin: null`, which the CSRF
 * check refuses; a same-origin fetch names this origin.
 */
export async function signOut(): Promise<void> {
  const signOutPath = session.value?.via === 'sign_in' ? session.value.sign_out : refusedSignOut.value
  forget()
  if (signOutPath === null) return
  await fetch(signOutPath, { method: 'POST', credentials: 'same-origin', redirect: 'manual', cache: 'no-store' }).catch(() => {})
  location.assign('/') // a fresh page: it asks who is signed in, and offers the sign-in again
}

/**
 * Where to sign in and out, for a person whose session was refused (403): the session endpoint asked
 * with no credential says so (a refusal carries no sign-in hint).
 */
export async function learnSignInPaths(): Promise<void> {
  try {
    const res = await fetch('/api/session', { credentials: 'omit', cache: 'no-store' })
    if (!res.ok) return
    const nobody = (await res.json()) as ConsoleSession
    signInPath.value = nobody.sign_in
    refusedSignOut.value = nobody.sign_out
  } catch {
    // the refusal still shows, with the token form
  }
}

export async function signIn(value: string): Promise<void> {
  token.value = value
  try {
    const me = await api<ConsoleSession>('session')
    if (me.access === null) throw new ApiError('That token is not valid for this gateway.', 401, 'unauthorized', true)
    session.value = me
    ended.value = null
    sessionStorage.setItem(KEY, value)
  } catch (err) {
    token.value = null
    throw err
  }
}

interface CallInit {
  method?: string
  body?: unknown
  accept?: number[]
  /** Asked by a timer, not a person (the Overview's live refresh): said, so that the session's idle clock may not count it as use. */
  background?: boolean
  /**
   * The body carries another token (an approver's), which a 401 may be about: the caller says so,
   * and this tab's credential is kept (the admin was signed out for an approver's expired token).
   */
  tokenInBody?: boolean
}

async function call(path: string, init: CallInit = {}): Promise<Response> {
  const headers: Record<string, string> = token.value === null ? {} : { authorization: `Bearer ${token.value}` }
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (init.background) headers['x-bouncer-background'] = '1'
  const res = await fetch(`/api/${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    cache: 'no-store',
    // A token never travels with a cookie; without one, the session cookie is the credential.
    credentials: token.value === null ? 'same-origin' : 'omit',
  }).catch((err: unknown) => {
    // No answer at all (the gateway restarting, stopped, out of reach): said so, not the browser's "Failed to fetch".
    throw new ApiError(`The gateway did not answer (${(err as Error).message}): it may be restarting or out of reach; try again in a moment.`, 0, null)
  })
  if (res.ok || init.accept?.includes(res.status)) return res
  const problem = (await res.json().catch(() => null)) as { detail?: string; code?: string } | null
  // This tab's credential refused: a 401 of the admin API's own realm, or of the session (it names where to sign in).
  const ours = !init.tokenInBody || /realm="bouncer-admin"/.test(res.headers.get('www-authenticate') ?? '') || res.headers.has('x-bouncer-sign-in')
  if (res.status === 401 && ours) signInPath.value = res.headers.get('x-bouncer-sign-in')
  if (res.status === 401 && path !== 'session' && ours) {
    if (session.value !== null) ended.value = session.value.via === 'sign_in' ? 'session' : 'token'
    forget()
  }
  const invalidToken = /error="invalid_token"/.test(res.headers.get('www-authenticate') ?? '')
  throw new ApiError(problem?.detail ?? `${res.status} ${res.statusText}`, res.status, problem?.code ?? null, invalidToken)
}

const early = new Map<string, Promise<unknown>>()

/** Asks now for what a page will ask for once the session is known: the two round trips overlap. */
export function prefetch(path: string): void {
  if (token.value === null) return // a session cookie may be there or not: the page waits to know
  const answer = call(path).then((res) => res.json())
  answer.catch(() => {}) // the page asks again, and reports
  early.set(path, answer)
}

export async function api<T>(path: string, init: CallInit = {}): Promise<T> {
  const ready = init.method === undefined ? early.get(path) : undefined
  if (ready) {
    early.delete(path)
    try {
      return (await ready) as T
    } catch {
      // asked again below
    }
  }
  return (await (await call(path, init)).json()) as T
}

/** Saves what an endpoint answers as a file (the browser's own download, from memory). */
/** A saved file's name, and the limit it was cut at where more records matched than it holds. */
export interface Saved {
  name: string
  truncatedAt: number | null
}

export async function download(path: string): Promise<Saved> {
  const res = await call(path)
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'download'
  const truncated = res.headers.get('x-bouncer-export-truncated')
  const url = URL.createObjectURL(await res.blob())
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
  return { name, truncatedAt: truncated === null ? null : Number(truncated) }
}

export const query = (params: Record<string, string | number | undefined | null>): string => {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const text = q.toString()
  return text ? `?${text}` : ''
}
