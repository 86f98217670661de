// The provider's side of a person signing in through a browser: the accounts, a login page (what
// oidc-provider calls an interaction), and the sign-out confirmation of RP-initiated logout. Plain
// HTML forms, enough for a person or a test's browser to use, and for the demo's test account.
import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type Provider from 'oidc-provider'

export interface Person {
  username: string
  password: string
  /** The ID token's sub (default: the username). */
  sub?: string
  name: string
  email: string
  groups: string[]
}

/** A browser application registered at the provider: the gateway's sign_in. */
export interface WebClient {
  clientId: string
  secret: string
  redirectUris: string[]
  postLogoutRedirectUris: string[]
}

export const PERSON_SCOPES = ['openid', 'offline_access', 'email', 'profile', 'groups']

export function personAccounts(people: readonly Person[]) {
  const bySub = new Map(people.map((p) => [p.sub ?? p.username, p]))
  return {
    find(sub: string) {
      const person = bySub.get(sub)
      if (!person) return undefined
      return {
        accountId: sub,
        claims: async () => ({ sub, name: person.name, preferred_username: person.username, email: person.email, email_verified: true, groups: person.groups }),
      }
    },
  }
}

const page = (title: string, body: string) => `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto}input,button{display:block;margin:.5rem 0;padding:.4rem;width:100%}</style>
</head><body><h1>${title}</h1>${body}</body></html>`

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** oidc-provider's logoutSource: the "sign out of the provider too?" page of RP-initiated logout. */
export async function signOutPage(ctx: { body: unknown }, form: string): Promise<void> {
  ctx.body = page('Sign out', `${form}<p>Sign out of the demo SSO as well?</p>
<button id="sign-out" autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`)
}

function loginForm(uid: string, client: string, error: string | null): string {
  return page('Sign in', `<p>to continue to <b>${escape(client)}</b></p>${error ? `<p role="alert" style="color:#b00">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Username <input name="username" autocomplete="username" autofocus required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button id="sign-in" type="submit">Sign in</button></form>`)
}

async function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  let text = ''
  for await (const chunk of req) {
    text += (chunk as Buffer).toString('utf8')
    if (text.length > 8_192) break
  }
  return new URLSearchParams(text)
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * The provider's requests: its login page at /interaction/:uid, everything else to oidc-provider.
 * `onRequest` sees every request first (tests count them).
 */
export function providerHandler(provider: Provider, people: readonly Person[]): (req: IncomingMessage, res: ServerResponse) => void {
  const callback = provider.callback()
  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, login: boolean): Promise<void> {
    const details = await provider.interactionDetails(req, res)
    if (details.uid !== uid) throw new Error('interaction mismatch')
    const client = String(details.params.client_id ?? '')
    if (!login) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(loginForm(uid, client, null))
      return
    }
    const form = await formBody(req)
    const person = people.find((p) => p.username === form.get('username'))
    if (!person || !same(person.password, form.get('password') ?? '')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(loginForm(uid, client, 'Wrong username or password.'))
      return
    }
    await provider.interactionFinished(req, res, { login: { accountId: person.sub ?? person.username } }, { mergeWithLastSubmission: false })
  }
  return (req, res) => {
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec((req.url ?? '').split('?')[0] ?? '')
    if (!match) return void callback(req, res)
    const login = match[2] !== undefined
    if ((login && req.method !== 'POST') || (!login && req.method !== 'GET')) return void res.writeHead(405).end()
    interaction(req, res, match[1] as string, login).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' })
      res.end(`sign-in failed: ${(err as Error).message}`)
    })
  }
}
