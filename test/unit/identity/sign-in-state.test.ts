// Found by an adversarial probe (helper): every page load without a session stored a pending sign-in (with its return path, up to 2 KB) in the session store until login_timeout, so anyone could grow Redis, the SQLite file or the heap; the sign-in under way now travels sealed in the browser's state cookie.
// The sealed state cookie, with a stand-in provider and clock: what it carries to the callback (the
// PKCE verifier and nonce the authorization URL was built from), its end (login_timeout), its
// size, and that one sign-in's cookie is nothing to another's.
import { hash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { configSchema, jwtIssuers } from '../../../src/config/index.ts'
import { GatewayError } from '../../../src/errors/index.ts'
import type { CredentialInput } from '../../../src/identity/authenticate.ts'
import { createSignIn, type SignIn } from '../../../src/identity/index.ts'
import { openMemorySessionStore } from '../../../src/identity/sessions/memory-store.ts'
import { SignInRefused, type SignInProvider } from '../../../src/identity/sessions/provider.ts'
import { openPending, pendingKey } from '../../../src/identity/sessions/sign-in-state.ts'
import type { SessionStore } from '../../../src/identity/sessions/store.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const HOST = 'gateway.example'
let clock = Date.parse('2026-01-01T00:00:00Z')
let store: SessionStore
const exchanged: Array<{ state: string; nonce: string; codeVerifier: string }> = []
const authorized: Array<Record<string, string>> = []

const provider: SignInProvider = {
  async authorizationUrl(parameters) {
    authorized.push(parameters)
    return new URL(`https://idp.example/auth?${new URLSearchParams(parameters)}`)
  },
  async exchangeCode(_url, checks) {
    exchanged.push(checks)
    throw new SignInRefused('invalid_grant')
  },
  async refresh() {
    throw new SignInRefused('invalid_grant')
  },
  async endSessionUrl() {
    return null
  },
  async revokeRefreshToken() {
    return false
  },
}

function signIn(audience: 'gateway' | 'console' = 'gateway', callbackPath = '/.bouncer/callback'): SignIn {
  const config = configSchema.parse({
    issuers: [{ name: 'sso', issuer: 'https://idp.example', audiences: ['api'] }],
    sign_in: { issuer: 'sso', client_id: 'web', client_secret: 'web-secret', callback_path: callbackPath },
  })
  store ??= openMemorySessionStore(3_600_000)
  return createSignIn({
    config: config.sign_in!,
    issuer: jwtIssuers(config)[0]!,
    keys: new Map(),
    store,
    audience,
    cookieSecure: false,
    logger: createLogger({ level: 'silent' }),
    provider,
    now: () => clock,
  })
}

function input(query: string, cookie?: string): CredentialInput {
  return {
    headers: { host: HOST } as CredentialInput['headers'],
    rawHeaders: ['host', HOST, ...(cookie === undefined ? [] : ['cookie', cookie])],
    query,
    socket: null as unknown as CredentialInput['socket'],
    method: 'GET',
  }
}

/** Begins a sign-in: the state the provider is sent, and the Set-Cookie of the state cookie. */
async function begin(gateway: SignIn, returnTo = '/app/x'): Promise<{ state: string; setCookie: string; cookie: string }> {
  const answer = await gateway.start(input(`return_to=${encodeURIComponent(returnTo)}`))
  expect(answer.status).toBe(302)
  const state = new URL(answer.headers.location as string).searchParams.get('state') as string
  const setCookie = answer.headers['set-cookie'] as string
  return { state, setCookie, cookie: setCookie.split(';')[0] as string }
}

async function refusal(work: Promise<unknown>): Promise<GatewayError> {
  const err = await work.then(() => null, (e: unknown) => e)
  expect(err).toBeInstanceOf(GatewayError)
  return err as GatewayError
}

afterEach(() => {
  exchanged.length = 0
  authorized.length = 0
})

describe('the sign-in state cookie', () => {
  it('carries the PKCE verifier and nonce the authorization URL was built from; the store holds nothing for it', async () => {
    const gateway = signIn()
    const { state, setCookie, cookie } = await begin(gateway)
    expect(setCookie).toMatch(/^bouncer_session_state=[A-Za-z0-9_-]+; Path=\/\.bouncer\/callback; Max-Age=600; HttpOnly; SameSite=Lax$/)
    expect(cookie).not.toContain(state) // sealed, not the state in clear
    const refused = await refusal(gateway.callback(input(`code=c&state=${state}`, cookie)))
    expect(refused.status).toBe(400)
    expect(refused.detail).toContain('already used')
    const [checks] = exchanged
    expect(checks?.state).toBe(state)
    expect(hash('sha256', checks?.codeVerifier ?? '', 'base64url')).toBe(authorized[0]?.code_challenge)
    expect(checks?.nonce).toBe(authorized[0]?.nonce)
    expect(await store.list(clock)).toEqual([])
  })

  it('is refused once login_timeout has passed, before the code goes to the provider', async () => {
    const gateway = signIn()
    const { state, cookie } = await begin(gateway)
    clock += 600_000
    const refused = await refusal(gateway.callback(input(`code=c&state=${state}`, cookie)))
    expect(refused.status).toBe(400)
    expect(refused.detail).toContain('longer than login_timeout')
    expect(exchanged).toHaveLength(0)
  })

  it('is nothing to another sign-in (the console\'s), nor when tampered with, nor for another state', async () => {
    const gateway = signIn()
    const consoleSignIn = signIn('console')
    const { state, cookie } = await begin(gateway)
    const [name, value] = cookie.split('=') as [string, string]
    const tampered = `${name}=${value.slice(0, -2)}${value.endsWith('AA') ? 'BB' : 'AA'}`
    const other = await begin(gateway)
    for (const [who, query, sent] of [[consoleSignIn, `code=c&state=${state}`, cookie], [gateway, `code=c&state=${state}`, tampered], [gateway, `code=c&state=${state}`, other.cookie]] as const) {
      const refused = await refusal(who.callback(input(query, sent)))
      expect(refused.status).toBe(400)
      expect(refused.detail).toContain('state does not match')
    }
    expect(exchanged).toHaveLength(0)
  })

  it('fits a browser\'s 4,096 bytes with the longest return_to; when the cookie\'s attributes leave no room, the browser comes back to /', async () => {
    const long = `/app/${'a'.repeat(2_040)}`
    expect(long).toHaveLength(2_045)
    const { setCookie, cookie } = await begin(signIn(), long)
    expect(setCookie.length).toBeLessThanOrEqual(4_096)
    const key = pendingKey(await store.signInKey(), 'gateway', 'web')
    expect(openPending(cookie.split('=')[1] as string, key)?.returnTo).toBe(long)

    const roomless = await begin(signIn('gateway', `/${'c'.repeat(1_500)}`), long)
    expect(roomless.setCookie.length).toBeLessThanOrEqual(4_096)
    expect(openPending(roomless.cookie.split('=')[1] as string, key)?.returnTo).toBe('/')
  })
})
