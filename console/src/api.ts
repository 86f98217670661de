// The console's one way to the gateway: /api/* with the admin token as a bearer header. The token
// lives in this tab's sessionStorage only (gone when the tab closes) and is never put in a cookie or
// a URL, so another site cannot make the browser use it (CSRF), and it never reaches a log.
import { signal } from '@preact/signals'

export interface Session {
  access: 'read' | 'admin'
  via: string
  may: { reload: boolean; verify: boolean; approve: boolean }
}

const KEY = 'bouncer.console.token'
export const token = signal<string | null>(sessionStorage.getItem(KEY))
export const session = signal<Session | null>(null)

export class ApiError extends Error {
  readonly status: number
  readonly code: string | null
  constructor(message: string, status: number, code: string | null) {
    super(message)
    this.status = status
    this.code = code
  }
}

export function signOut(): void {
  sessionStorage.removeItem(KEY)
  token.value = null
  session.value = null
}

export async function signIn(value: string): Promise<void> {
  token.value = value
  try {
    session.value = await api<Session>('session')
    sessionStorage.setItem(KEY, value)
  } catch (err) {
    token.value = null
    throw err
  }
}

async function call(path: string, init: { method?: string; body?: unknown; accept?: number[] } = {}): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${token.value ?? ''}` }
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`/api/${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    cache: 'no-store',
    credentials: 'omit',
  })
  if (res.ok || init.accept?.includes(res.status)) return res
  const problem = (await res.json().catch(() => null)) as { detail?: string; code?: string } | null
  if (res.status === 401 && path !== 'session') signOut()
  throw new ApiError(problem?.detail ?? `${res.status} ${res.statusText}`, res.status, problem?.code ?? null)
}

const early = new Map<string, Promise<unknown>>()

/** Asks now for what a page will ask for once the session is known: the two round trips overlap. */
export function prefetch(path: string): void {
  if (token.value === null) return
  const answer = call(path).then((res) => res.json())
  answer.catch(() => {}) // the page asks again, and reports
  early.set(path, answer)
}

export async function api<T>(path: string, init: { method?: string; body?: unknown; accept?: number[] } = {}): Promise<T> {
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
export async function download(path: string): Promise<string> {
  const res = await call(path)
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'download'
  const url = URL.createObjectURL(await res.blob())
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
  return name
}

export const query = (params: Record<string, string | number | undefined | null>): string => {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const text = q.toString()
  return text ? `?${text}` : ''
}
