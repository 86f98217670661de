// Found by the sign-in probe: a person in many groups signed out through nginx got nginx's 502 "Bad
// Gateway", and stayed signed in at the provider. RP-initiated logout put their whole ID token in
// the redirect's id_token_hint: 700 groups made a Location of ~16 KB, which nginx refuses by
// default ("upstream sent too big header": its proxy_buffer_size is one page, 4 KB, for the whole
// header block), and which a provider's own front end refuses as a request line too (8 KB at nginx,
// Apache). Now a sign-out whose Location would pass 3 KB with the ID token leaves id_token_hint
// out and sends client_id alone (with post_logout_redirect_uri), which OIDC RP-Initiated Logout
// §2 lets the provider check the return address by; the provider may ask the person to confirm.
// Real nginx (Debian's) in front of the gateway, with its defaults; the real provider behind it.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProcess, type Started } from '../../bench/lib/processes.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { closedPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { Person, TestIdentityProvider } from '../helpers/identity-provider.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

/** In 700 groups: an ID token of ~20 KB (Entra ID and Okta put up to 200 and 100 in one; directories synced to them, more). */
const BOB: Person = { username: 'bob', password: 'bob-password-1234', name: 'Bob Many-Groups', email: 'bob@example.com', groups: ['analysts', ...Array.from({ length: 700 }, (_, i) => `department-${i}-reporting`)] }

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let nginx: Started
let origin: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'si3-sign-out-'))
  upstream = await startUpstream()
  const proxyPort = await closedPort()
  origin = `http://127.0.0.1:${proxyPort}`
  idp = await startSignInProvider(origin, { people: [ALICE, BOB], afterSignOut: '/' })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, base_url: origin, session: { store: 'memory' } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  })
  await mkdir(join(dir, 'logs'))
  const conf = join(dir, 'nginx.conf')
  // nginx's defaults for a reverse proxy: nothing about buffers.
  await writeFile(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${proxyPort};
    location / { proxy_pass ${gateway.url}; }
  }
}
`)
  nginx = await startProcess('/usr/sbin/nginx', ['-p', dir, '-c', conf], null, { core: null })
  await waitFor(async () => (await fetch(`${origin}/.bouncer/sign_out`).catch(() => null))?.status === 200, `nginx at ${origin}\n${nginx.output()}`, 20_000)
}, 60_000)

afterAll(async () => {
  await nginx?.stop()
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function signOut(person: Person) {
  const client = cookieJar()
  const toLogin = await client.follow(`${origin}/people/start`)
  const loggedIn = await submitLogin(client, toLogin.reply!, person.username, person.password)
  const signedIn = await client.follow(loggedIn.location!)
  expect(signedIn.reply?.status, signedIn.reply?.body).toBe(200)
  return client.request(`${origin}/.bouncer/sign_out`, { method: 'POST', headers: { origin } })
}

describe('sign-out through nginx with its defaults', { timeout: 60_000 }, () => {
  it('a person in 700 groups is sent to the provider\'s end_session_endpoint with client_id, not a 16 KB id_token_hint (nginx\'s 502)', async () => {
    const out = await signOut(BOB)
    expect(out.status, out.body.slice(0, 300)).toBe(302)
    const location = new URL(out.location!)
    expect(location.href.startsWith(idp.issuer)).toBe(true)
    expect(location.href.length).toBeLessThanOrEqual(3_072)
    expect(location.searchParams.get('id_token_hint')).toBeNull()
    expect(location.searchParams.get('client_id')).toBe('bouncer-web')
    expect(location.searchParams.get('post_logout_redirect_uri')).toBe(`${origin}/`)
    // The provider takes it: its sign-out page, not an error.
    const atProvider = await cookieJar().request(location.href)
    expect(atProvider.status, atProvider.body.slice(0, 300)).toBe(200)
  })

  it('a person in a few groups still gets id_token_hint', async () => {
    const out = await signOut(ALICE)
    expect(out.status, out.body.slice(0, 300)).toBe(302)
    expect(new URL(out.location!).searchParams.get('id_token_hint')).toMatch(/^eyJ/)
  })
})
