// Pages by the URL's fragment (#/requests?route=x): the server serves one page, and a link can be shared.
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

export function go(page: string, params: Record<string, string> = {}): void {
  const search = new URLSearchParams(params).toString()
  location.hash = `#/${page}${search ? `?${search}` : ''}`
}
