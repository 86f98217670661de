// The scripted tour `bouncer demo` runs once: real tokens from the provider (openid-client's
// client-credentials grant), real requests through the gateway (undici), and the audit log read
// back, each step printed with what the gateway answered and why. Then the curl lines to repeat it.
import { join, relative } from 'node:path'
import { generateKeyPair, importJWK, SignJWT, type JWK } from 'jose'
import * as client from 'openid-client'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { Agent, request, type Dispatcher } from 'undici'
import { formatAuditTable, searchAudit } from '../audit/index.ts'
import { DEMO_AUDIENCE, DEMO_CLIENTS, DEMO_CONFIG, DEMO_DEFAULT_DATA_DIR, DEMO_PERSON, type RunningDemo } from './run.ts'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Record<string, unknown>
}

async function get(url: string, token: string, dispatcher?: Dispatcher): Promise<Answer> {
  const res = await request(url, { headers: { authorization: `Bearer ${token}` }, ...(dispatcher ? { dispatcher } : {}) })
  const text = await res.body.text()
  let body: Record<string, unknown>
  try {
    body = JSON.parse(text) as Record<string, unknown>
  } catch {
    body = { text }
  }
  return { status: res.statusCode, headers: res.headers, body }
}

/**
 * A scanner spraying tokens like that one, from another address of this host (127.0.0.2: every
 * caller of the tour is 127.0.0.1, which auth_failures would hold back too), until it is held back.
 */
async function scannerStep(url: string, token: string, print: (line?: string) => void): Promise<void> {
  const scanner = new Agent({ localAddress: '127.0.0.2' })
  try {
    print('   A scanner at 127.0.0.2 sprays 12 such tokens, one after another:')
    const sprayed = new Map<string, number>()
    let heldBack: Answer | undefined
    for (let i = 0; i < 12; i++) {
      const answer = await get(url, token, scanner)
      const outcome = `${answer.status} ${String(answer.body.code)}`
      sprayed.set(outcome, (sprayed.get(outcome) ?? 0) + 1)
      if (answer.status === 429) heldBack ??= answer
    }
    print(`   GET /reports/daily/eu ×12 → ${[...sprayed].map(([outcome, n]) => `${n} × ${outcome}`).join(', ')}`)
    if (heldBack) print(`   held back (auth_failures: bursts of 10 failures, then 10/m per address): its tokens are no longer read, Retry-After: ${String(heldBack.headers['retry-after'])}`)
  } catch (err) {
    // macOS has only 127.0.0.1 on its loopback interface unless told otherwise.
    const code = (err as NodeJS.ErrnoException).code ?? ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
    if (code !== 'EADDRNOTAVAIL') throw err
    print('   (a scanner at 127.0.0.2 would be held back after 10 failures: this host cannot send from 127.0.0.2)')
  } finally {
    await scanner.close()
  }
}

async function clientToken(issuer: string, account: { clientId: string; secret: string }, resource = DEMO_AUDIENCE): Promise<string> {
  const config = await client.discovery(new URL(issuer), account.clientId, account.secret, undefined, { execute: [client.allowInsecureRequests] })
  return (await client.clientCredentialsGrant(config, { resource })).access_token
}

/**
 * The agent over MCP: what it may see, a PII tool refused, and a bulk export that waits for a
 * person in the `reports` role, approved here through the admin API, then run once.
 */
async function mcpStep(demo: RunningDemo, print: (line?: string) => void): Promise<void> {
  const token = await clientToken(demo.issuer, DEMO_CLIENTS.agent, demo.mcpResource)
  const agent = new Client({ name: 'analytics-agent', version: '1.0.0' })
  await agent.connect(new StreamableHTTPClientTransport(new URL(`${demo.gateway.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))
  try {
    const { tools } = await agent.listTools()
    print(`   tools/list → ${tools.map((t) => t.name).join(', ')} (list_customers is not offered: its route holds PII)`)
    const refused = await agent.callTool({ name: 'list_customers', arguments: {} }).then(() => 'ran', (err: Error) => err.message)
    print(`   tools/call list_customers → refused: ${refused.replace(/^MCP error -?\d+: /, '')}`)
    const pending = (await agent.callTool({ name: 'export_orders', arguments: {} })).structuredContent as { status: string; approval_id: string }
    print(`   tools/call export_orders → ${pending.status} ${pending.approval_id}`)
    const reportsToken = await clientToken(demo.issuer, DEMO_CLIENTS.reports)
    const decided = await request(`${demo.gateway.adminUrl}/api/approvals/${pending.approval_id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: reportsToken }),
    })
    const approval = (await decided.body.json()) as { status?: string; decided_by?: string }
    print(`   looker-reports (role reports, an approver) approves it → ${String(approval.status)} (POST /api/approvals/${pending.approval_id}/approve on the admin API; by hand, README "Approvals")`)
    const ran = await agent.callTool({ name: 'export_orders', arguments: {} })
    const text = (ran.content as { type: string; text?: string }[])[0]?.text ?? ''
    const rows = text.split('\n').filter(Boolean).length - 1 // its header is not a row, as in step 2
    print(`   tools/call export_orders again → ${ran.isError ? 'error' : 'ran once'}: ${rows} CSV rows; a third call would ask again`)
  } finally {
    await agent.close()
  }
}

async function signed(key: JWK, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).sign(await importJWK(key, 'ES256'))
}

/**
 * What a browser does with the sign-in link, by hand: follow the redirects, keep each origin's
 * cookies, fill in the provider's login form. Answers the page it lands on and the session cookie.
 */
async function browserSignIn(link: string, username: string, password: string): Promise<{ landed: string; page: Answer; hops: number }> {
  const jars = new Map<string, Map<string, string>>()
  const jar = (url: URL) => jars.get(url.origin) ?? jars.set(url.origin, new Map()).get(url.origin) as Map<string, string>
  async function go(url: string, init: { method?: 'GET' | 'POST'; body?: string } = {}) {
    const target = new URL(url)
    const cookie = [...jar(target)].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await request(url, {
      method: init.method ?? 'GET',
      body: init.body,
      headers: { accept: 'text/html', ...(cookie ? { cookie } : {}), ...(init.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    })
    for (const line of [res.headers['set-cookie'] ?? []].flat()) {
      const [pair = ''] = line.split(';')
      const eq = pair.indexOf('=')
      if (/max-age=0/i.test(line) || eq === pair.length - 1) jar(target).delete(pair.slice(0, eq))
      else jar(target).set(pair.slice(0, eq), pair.slice(eq + 1))
    }
    const text = await res.body.text()
    const location = res.headers.location as string | undefined
    return { status: res.statusCode, headers: res.headers, text, next: location === undefined ? undefined : new URL(location, url).href }
  }
  let hops = 0
  let reply = await go(link)
  let url = link
  for (; reply.next !== undefined && hops < 20; hops++) reply = await go((url = reply.next))
  const action = /<form method="post" action="([^"]+)"/.exec(reply.text)?.[1]
  if (!action) throw new Error(`no login form at ${url}`)
  reply = await go(new URL(action, url).href, { method: 'POST', body: new URLSearchParams({ username, password }).toString() })
  for (; reply.next !== undefined && hops < 40; hops++) reply = await go((url = reply.next))
  let body: Record<string, unknown>
  try {
    body = JSON.parse(reply.text) as Record<string, unknown>
  } catch {
    body = { text: reply.text }
  }
  return { landed: url, page: { status: reply.status, headers: reply.headers, body }, hops }
}

const refusal = (a: Answer) => `${a.status} ${String(a.body.code)}: ${String(a.body.detail)}`

/** A path to show in a command line: relative to where the user is, when that is shorter. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel.startsWith('..') ? path : rel
}

export async function runTour(demo: RunningDemo, print: (line?: string) => void): Promise<void> {
  const gw = demo.gateway.url
  const startedAt = new Date()
  print('The tour (it just ran; every request went through the gateway):')
  print()

  print(`1. looker-reports (a BI tool's scheduled reports) gets a token with the client-credentials grant`)
  print('   and fetches today\'s EU report:')
  const reportsToken = await clientToken(demo.issuer, DEMO_CLIENTS.reports)
  const report = await get(`${gw}/reports/daily/eu`, reportsToken)
  const who = report.body.requested_by as { subject?: string; roles?: string[] } | undefined
  print(`   GET /reports/daily/eu → ${report.status}, ${(report.body.hours as unknown[] | undefined)?.length ?? 0} hourly rows generated at ${String(report.body.generated_at)};`)
  print(`   the data API verified X-Bouncer-Assertion: caller ${who?.subject ?? '?'} with roles ${JSON.stringify(who?.roles ?? [])}`)
  print()

  print('2. analytics-agent (an AI agent) asks for customer records, which hold PII:')
  const agentToken = await clientToken(demo.issuer, DEMO_CLIENTS.agent)
  const pii = await get(`${gw}/customers`, agentToken)
  print(`   GET /customers → ${refusal(pii)}`)
  print('   It may read the orders dataset, fresh from the database as CSV (what a spreadsheet\'s')
  print('   import-from-URL reads), with the customers\' emails masked; finance sees them:')
  const agentCsv = await get(`${gw}/datasets/orders?region=eu&format=csv`, agentToken)
  const financeToken = await clientToken(demo.issuer, DEMO_CLIENTS.finance)
  const financeCsv = await get(`${gw}/datasets/orders?region=eu&format=csv`, financeToken)
  const lines = (a: Answer) => String(a.body.text ?? '').split('\r\n')
  print(`   analytics-agent: GET /datasets/orders?region=eu&format=csv → ${agentCsv.status}, ${lines(agentCsv).filter(Boolean).length - 1} rows; emails masked:`)
  for (const line of lines(agentCsv).slice(0, 3)) print(`     ${line}`)
  print(`   finance-analyst (role finance): the same request → ${financeCsv.status}; emails as they are:`)
  for (const line of lines(financeCsv).slice(0, 3)) print(`     ${line}`)
  print()

  print('3. analytics-agent fires 15 requests at once (its limit: bursts of 10, then 5/s):')
  const burst = await Promise.all(Array.from({ length: 15 }, () => get(`${gw}/reports/daily/us`, agentToken)))
  const throttled = burst.find((a) => a.status === 429)
  const counts = new Map<number, number>()
  for (const a of burst) counts.set(a.status, (counts.get(a.status) ?? 0) + 1)
  print(`   GET /reports/daily/us ×15 → ${[...counts].map(([status, n]) => `${n} × ${status}`).join(', ')}`)
  if (throttled) print(`   ${throttled.status} ${String(throttled.body.code)} with Retry-After: ${String(throttled.headers['retry-after'])} (and RateLimit: ${String(throttled.headers['ratelimit'])})`)
  print()

  print('4. a token from an identity provider the gateway does not trust:')
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const now = Math.floor(Date.now() / 1000)
  const foreign = await new SignJWT({ sub: 'looker-reports', client_id: 'looker-reports', aud: DEMO_AUDIENCE, iss: 'https://login.unknown-idp.example/', iat: now, exp: now + 300 })
    .setProtectedHeader({ alg: 'ES256', kid: 'someone-else' })
    .sign(privateKey)
  print(`   GET /reports/daily/eu → ${refusal(await get(`${gw}/reports/daily/eu`, foreign))}`)
  await scannerStep(`${gw}/reports/daily/eu`, foreign, print)
  print()

  print('5. a token the demo provider signed, which expired ten minutes ago:')
  const expired = await signed(demo.providerKey, { iss: demo.issuer, sub: 'looker-reports', client_id: 'looker-reports', aud: DEMO_AUDIENCE, iat: now - 1_200, exp: now - 600 })
  print(`   GET /reports/daily/eu → ${refusal(await get(`${gw}/reports/daily/eu`, expired))}`)
  print()

  print('6. analytics-agent as an MCP client (POST /mcp with the official SDK, a token for the MCP resource):')
  // The agent's burst in step 3 emptied its bucket: its approved call below would meet the same
  // 429, so the tour lets the Retry-After it was given pass first.
  if (throttled) await new Promise((r) => setTimeout(r, 1_000 * Number(throttled.headers['retry-after'] ?? 1)))
  await mcpStep(demo, print)
  print()

  print('7. a person in a browser: alice (group analysts) opens the sign-in link and signs in at the demo SSO:')
  const link = `${gw}/.bouncer/sign_in?return_to=/reports/daily/eu`
  const person = await browserSignIn(link, DEMO_PERSON.username, DEMO_PERSON.password)
  const viewer = person.page.body.requested_by as { subject?: string; roles?: string[] } | undefined
  print(`   ${new URL(person.landed).pathname} → ${person.page.status} after ${person.hops} redirects (the provider's login page, the callback);`)
  print(`   the data API saw caller ${viewer?.subject ?? '?'} with roles ${JSON.stringify(viewer?.roles ?? [])}, from a session cookie`)
  print('   Try it in your browser:')
  print(`     ${link}`)
  print(`     username ${DEMO_PERSON.username}, password ${DEMO_PERSON.password}; sign out at ${gw}/.bouncer/sign_out`)
  print()

  print('8. the audit log has all of it (bouncer audit --since 1m):')
  // Records reach SQLite within the 100 ms flush interval; a loaded machine may take longer (the
  // first run's file does not exist until then): wait until the count stops growing, 10 s at most.
  const source = { type: 'sqlite' as const, path: join(demo.dataDir, 'audit.db') }
  let records: Awaited<ReturnType<typeof searchAudit>> = []
  for (let waited = 0, unchanged = 0; waited <= 10_000 && unchanged < 3; waited += 100) {
    await new Promise((r) => setTimeout(r, 100))
    const seen = await searchAudit(source, { sinceMs: startedAt.getTime(), limit: 80 }).catch(() => records)
    unchanged = seen.length > 0 && seen.length === records.length ? unchanged + 1 : 0
    records = seen
  }
  for (const line of formatAuditTable(records).split('\n')) print(`   ${line}`)
  print()

  const configFlag = `--config ${shown(DEMO_CONFIG)}`
  // The config's defaults are the demo's default ports and the checkout's data/; anything else is
  // said on the line (a data directory in full: the config reads relative paths from its own folder).
  const env = [
    ...(demo.dataDir === DEMO_DEFAULT_DATA_DIR ? [] : [`DEMO_DATA_DIR=${demo.dataDir}`]),
    ...(demo.issuer === 'http://127.0.0.1:9400' ? [] : [`DEMO_ISSUER=${demo.issuer}`]),
  ]
  const envPrefix = env.map((e) => `${e} `).join('')
  const tokenOf = (account: { clientId: string; secret: string }) =>
    `$(curl -s -u ${account.clientId}:${account.secret} -d grant_type=client_credentials -d resource=${DEMO_AUDIENCE} ${demo.issuer}/token | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`
  print('Try it by hand:')
  print(`  REPORTS=${tokenOf(DEMO_CLIENTS.reports)}`)
  print(`  AGENT=${tokenOf(DEMO_CLIENTS.agent)}`)
  print(`  curl -s -H "Authorization: Bearer $REPORTS" ${gw}/reports/daily/eu          # 200, fresh data`)
  print(`  curl -s -H "Authorization: Bearer $REPORTS" ${gw}/exports/orders.csv        # 200, CSV`)
  print(`  curl -s -H "Authorization: Bearer $AGENT" ${gw}/customers                   # 403 DenyCustomerPII`)
  print(`  curl -s ${gw}/reports/daily/eu                                              # 401 missing_token`)
  print(`  ${envPrefix}npx bouncer audit ${configFlag} --since 10m`)
  print(`  ${envPrefix}npx bouncer explain ${configFlag} --method GET --path /customers --claims '{"iss":"${demo.issuer}","sub":"analytics-agent","client_id":"analytics-agent"}'`)
}

/** Where the console is, and how to sign in to it: as the demo's person (read-only), or with the admin token (printed, never the token itself). */
export function consoleLine(demo: RunningDemo): string {
  const prefix = demo.dataDir === DEMO_DEFAULT_DATA_DIR ? '' : `DEMO_DATA_DIR=${demo.dataDir} `
  return `console on ${demo.gateway.adminUrl}/ (sign in as ${DEMO_PERSON.username}, password ${DEMO_PERSON.password}, to read; with the admin token to change things: ${prefix}npx bouncer secrets get admin-token --reveal --config ${shown(DEMO_CONFIG)})`
}
