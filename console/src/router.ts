// Pages by the URL's fragment (#/requests?route=x): the server serves one page, and a link can be shared.
// A page's filters live in the fragment too, so a reload, back/forward and a shared link keep them.
import { signal } from '@preact/signals'

export interface Location {
  page: string
  params: URLSearchParams
}

function parse(): Location {
  const [path = '', search = ''] = location.hash.replace(/^#\/?/, '').split('?')
  return { page: path || 'overview', params: new URLSearchParams(search) }
}

export const here = signal<Location>(parse())
addEventListener('hashchange', () => (here.value = parse()))

/** The fragment of a page with these filters (empty ones left out). */
export function href(page: string, params: Record<string, string | null | undefined> = {}): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v)
  const search = q.toString()
  return `#/${page}${search ? `?${search}` : ''}`
}

export function go(page: string, params: Record<string, string | null | undefined> = {}): void {
  location.hash = href(page, params)
}

/** Changes some of this page's filters (null or '' removes one): a new history entry, so back undoes it. */
export function setParams(changes: Record<string, string | null | undefined>): void {
  const now = here.value
  go(now.page, { ...Object.fromEntries(now.params), ...changes })
}
