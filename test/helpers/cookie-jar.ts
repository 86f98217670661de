// A cookie-jar HTTP client that walks a browser's redirects by hand (undici, no automatic
// redirects), for the sign-in edge cases a real browser would not let a test produce: a tampered
// state, a replayed callback, a request without Origin. Cookies are kept per origin, with their Path.
import { request } from 'undici'

interface StoredCookie {
  value: string
  path: string
}

export interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  location: string | undefined
  body: string
  url: string
}

export interface CookieJarClient {
  /** Cookies per origin: name → value. */
  cookies(origin: string): Record<string, string>
  setCookie(origin: string, name: string, value: string): void
  request(url: string, options?: { method?: string; headers?: Record<string, string>; body?: string; html?: boolean }): Promise<Reply>
  /** Follows redirects from `url` until an answer that is not one, or until `stop(url)` says so (then that URL is not fetched). */
  follow(url: string, options?: { stop?: (url: string) => boolean; html?: boolean }): Promise<{ reply: Reply | null; url: string; chain: string[] }>
}

export function cookieJar(): CookieJarClient {
  const jar = new Map<string, Map<string, StoredCookie>>()
  const of = (origin: string) => {
    let cookies = jar.get(origin)
    if (!cookies) jar.set(origin, (cookies = new Map()))
    return cookies
  }

  function remember(url: URL, header: string | string[] | undefined): void {
    for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim())
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      const path = attributes.find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/'
      const expired = attributes.some((a) => a.toLowerCase() === 'max-age=0')
      if (expired || value === '') of(url.origin).delete(name)
      else of(url.origin).set(name, { value, path })
    }
  }

  async function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; html?: boolean } = {}): Promise<Reply> {
    const target = new URL(url)
    const cookies = [...of(target.origin)].filter(([, c]) => target.pathname.startsWith(c.path)).map(([name, c]) => `${name}=${c.value}`)
    const headers: Record<string, string> = { ...(options.html !== false ? { accept: 'text/html,application/xhtml+xml' } : {}), ...options.headers }
    if (cookies.length > 0) headers.cookie = cookies.join('; ')
    const res = await request(url, { method: (options.method ?? 'GET') as 'GET', headers, body: options.body })
    const body = await res.body.text()
    remember(target, res.headers['set-cookie'])
    const location = res.headers.location as string | undefined
    return { status: res.statusCode, headers: res.headers, location: location === undefined ? undefined : new URL(location, url).href, body, url }
  }

  return {
    cookies: (origin) => Object.fromEntries([...of(origin)].map(([name, c]) => [name, c.value])),
    setCookie: (origin, name, value) => void of(origin).set(name, { value, path: '/' }),
    request: send,
    async follow(url, options = {}) {
      const chain: string[] = []
      let next = url
      for (let i = 0; i < 20; i++) {
        if (options.stop?.(next)) return { reply: null, url: next, chain }
        chain.push(next)
        const reply = await send(next, { html: options.html })
        if (reply.status < 300 || reply.status >= 400 || reply.location === undefined) return { reply, url: next, chain }
        next = reply.location
      }
      throw new Error(`too many redirects from ${url}`)
    },
  }
}

/** The login form's action on the provider's page, and a POST of the person's username and password to it. */
export async function submitLogin(client: CookieJarClient, formPage: Reply, username: string, password: string): Promise<Reply> {
  const action = /<form method="post" action="([^"]+)"/.exec(formPage.body)?.[1]
  if (!action) throw new Error(`no login form at ${formPage.url}: ${formPage.body.slice(0, 200)}`)
  return client.request(new URL(action, formPage.url).href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }).toString(),
  })
}
